//! A browser for the consent and link pages: follows no redirect by itself, so each step can
//! be checked, and fills in the simulated platforms' sign-in forms.

pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }
}

impl Browser {
    /// Walks consent pages: follows redirects, and on each form signs in as `identity` and
    /// presses `decision`, until a page without a form; returns its status and text.
    pub async fn walk(&self, start: &str, identity: (&str, &str), decision: &str) -> (u16, String) {
        let mut url = start.to_owned();
        for _ in 0..12 {
            let response = self.http.get(&url).send().await.unwrap();
            if response.status().is_redirection() {
                url = location(&url, &response);
                continue;
            }
            let status = response.status().as_u16();
            let page = response.text().await.unwrap();
            let Some(form) = between(&page, "<form", "</form>") else {
                return (status, page);
            };
            let action = unescape(between(form, "action=\"", "\"").unwrap());
            let mut fields: Vec<(String, String)> = Vec::new();
            let mut rest = form;
            while let Some(at) = rest.find("<input type=\"hidden\"") {
                rest = &rest[at + 6..];
                let tag = &rest[..rest.find('>').unwrap()];
                if let Some(name) = between(tag, "name=\"", "\"") {
                    let value = between(tag, "value=\"", "\"").unwrap_or_default();
                    fields.push((unescape(name), unescape(value)));
                }
            }
            fields.push((identity.0.to_owned(), identity.1.to_owned()));
            fields.push(("decision".to_owned(), decision.to_owned()));
            let target = absolute(&url, &action);
            let submitted = self.http.post(&target).form(&fields).send().await.unwrap();
            assert!(
                submitted.status().is_redirection(),
                "{target} answered {}",
                submitted.status()
            );
            url = location(&target, &submitted);
        }
        panic!("the consent pages never ended")
    }

    /// Follows a prompt's "Sync now" link as `email`: confirms the primary platform on the
    /// hub's page, then signs in on the secondary platform and accepts. Returns the last page.
    pub async fn sync_through(&self, link: &str, primary: &str, email: &str) -> (u16, String) {
        self.sync_through_as(link, primary, ("login", email), "accept")
            .await
    }

    /// [`Browser::sync_through`] on a platform whose consent page signs in with the field
    /// `identity.0` and accepts with `decision`.
    pub async fn sync_through_as(
        &self,
        link: &str,
        primary: &str,
        identity: (&str, &str),
        decision: &str,
    ) -> (u16, String) {
        let started = self
            .http
            .post(link)
            .form(&[("primary", primary)])
            .send()
            .await
            .unwrap();
        assert!(started.status().is_redirection(), "{}", started.status());
        let consent = location(link, &started);
        self.walk(&consent, identity, decision).await
    }
}

pub fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn location(from: &str, response: &reqwest::Response) -> String {
    let location = response.headers()["location"].to_str().unwrap();
    absolute(from, location)
}

pub fn absolute(from: &str, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_owned();
    }
    let origin_end = from[8..].find('/').map_or(from.len(), |i| i + 8);
    format!("{}{target}", &from[..origin_end])
}

/// The "Sync now" link in a Slack prompt (`<URL|Sync now>`).
pub fn sync_link(text: &str) -> Option<String> {
    between(text, "<", "|Sync now>").map(str::to_owned)
}

/// The hub's sync link in a prompt as any platform writes it (mrkdwn, Markdown, HTML, plain):
/// the first address with a `/sync/` path.
pub fn any_sync_link(text: &str) -> Option<String> {
    text.match_indices("http")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| c.is_whitespace() || "\"'<>|()[]".contains(c))
                .unwrap_or(rest.len());
            unescape(&rest[..end])
        })
        .find(|link| link.contains("/sync/"))
}

/// Signs in to the simulator at `sim` as its Slack workspace's owner: their address and the
/// session cookie.
pub async fn slack_owner(http: &reqwest::Client, sim: &str) -> (String, String) {
    let users: Vec<serde_json::Value> = http
        .get(format!("{sim}/_sim/users?platform=slack"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = users
        .into_iter()
        .find(|u| u["kind"] == "primary_owner")
        .expect("the workspace has an owner");
    let email = owner["email"].as_str().unwrap().to_owned();
    let signed_in = http
        .post(format!("{sim}/slack/signin"))
        .form(&[("email", email.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (email, cookie)
}

/// The simulated Slack owner's address and a new pair of app configuration tokens (access,
/// refresh) from their page, as an admin connecting Slack copies them.
pub async fn slack_configuration_tokens(
    http: &reqwest::Client,
    sim: &str,
) -> (String, (String, String)) {
    let (owner, cookie) = slack_owner(http, sim).await;
    let page = http
        .post(format!("{sim}/slack/apps/tokens"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token =
        |id: &str| unescape(between(&page, &format!("<code id=\"{id}\">"), "</code>").unwrap());
    (owner, (token("access-token"), token("refresh-token")))
}
