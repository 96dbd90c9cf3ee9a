//! Conversations spread over every pair of connected platforms, for the tests and benchmarks
//! that load the relay with every kind of traffic at once.

use super::native::{Native, native};
use super::world::{World, ordered_pairs};

/// One conversation between two people at home on different platforms: who writes, where, and
/// where the copies are read.
pub struct PairConversation {
    pub index: usize,
    /// The writer's platform and the reader's, as the API names them: `slack → teams`.
    pub direction: String,
    pub writer: Box<dyn Native>,
    pub reader: Box<dyn Native>,
    /// The writer's token and chat on their platform.
    pub writer_token: String,
    pub writer_chat: String,
    /// The reader's token, and how the writer appears on the reader's platform.
    pub reader_token: String,
    pub copies_from: String,
}

/// A person at home on one platform, with their token there.
struct Cast {
    id: String,
    token: String,
}

/// How many people at home on each side of a pair give `conversations` pairs of them, the
/// first side about twice the second (20 × 10 for 200).
fn sides(conversations: usize) -> (usize, usize) {
    let second = ((conversations as f64 / 2.0).sqrt().round() as usize).max(1);
    (conversations / second, second)
}

impl World {
    /// About `total` conversations, each unordered pair of connected platforms carrying its
    /// share, half written on each side. A pair's share rounds down to a product of its two
    /// sides (200 exactly for one pair), so a few may be missing.
    ///
    /// Waits for the people to have their representations synced: the demo's auto-sync makes
    /// them, and where a platform represents only people with an account there, people on
    /// both platforms are linked.
    pub async fn conversations_over_pairs(&self, total: usize) -> Vec<PairConversation> {
        let platforms = self.connected_platforms().await;
        let account_only = self.account_only_platforms().await;
        let needs_linking = |other: &String| account_only.contains(other);
        let pairs: Vec<(String, String)> = ordered_pairs(&platforms)
            .into_iter()
            .filter(|(first, second)| first < second)
            .collect();
        let mut conversations = Vec::new();
        for (pair, (first, second)) in pairs.iter().enumerate() {
            let share = total / pairs.len() + usize::from(pair < total % pairs.len());
            let (mut on_first, mut on_second) = sides(share);
            // People on two platforms are fewer than people on one: the side whose people are
            // linked on an account-only platform is the smaller.
            if needs_linking(second) && !needs_linking(first) {
                (on_first, on_second) = (on_second, on_first);
            }
            let mut cast = Vec::new();
            for (home, other, count) in [(first, second, on_first), (second, first, on_second)] {
                let mut people = Vec::new();
                for person in self
                    .represented_people(home, other, count, &account_only)
                    .await
                {
                    people.push(Cast {
                        token: self.token(home, &person.email).await,
                        id: person.id,
                    });
                }
                cast.push(people);
            }
            for (i, a) in cast[0].iter().enumerate() {
                for (j, b) in cast[1].iter().enumerate() {
                    // Alternately written on one side and the other.
                    let ((writer, writer_home), (reader, reader_home)) = if (i + j) % 2 == 0 {
                        ((a, first), (b, second))
                    } else {
                        ((b, second), (a, first))
                    };
                    let reader_there = self.representation_on(&reader.id, writer_home).await;
                    let writer_there = self.representation_on(&writer.id, reader_home).await;
                    let client = native(writer_home);
                    let writer_chat = client
                        .open_chat(self, &writer.token, &[&reader_there])
                        .await;
                    conversations.push(PairConversation {
                        index: conversations.len(),
                        direction: format!("{writer_home} → {reader_home}"),
                        writer: client,
                        reader: native(reader_home),
                        writer_token: writer.token.clone(),
                        writer_chat,
                        reader_token: reader.token.clone(),
                        copies_from: writer_there,
                    });
                }
            }
        }
        conversations
    }
}
