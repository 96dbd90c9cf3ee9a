use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_core::{Noun, Platform, RepresentationKind};

use crate::ChatPlatform;

/// The platforms this hub can talk to, by platform.
#[derive(Default, Clone)]
pub struct PlatformRegistry {
    platforms: BTreeMap<Platform, Arc<dyn ChatPlatform>>,
}

impl PlatformRegistry {
    /// Adds a platform; a second registration of the same platform replaces the first.
    pub fn register(&mut self, platform: Arc<dyn ChatPlatform>) {
        self.platforms.insert(platform.platform(), platform);
    }

    pub fn get(&self, platform: Platform) -> Option<&Arc<dyn ChatPlatform>> {
        self.platforms.get(&platform)
    }

    /// What `platform` calls a representation of `kind`: its module's word, or the kind's
    /// general name where no module of the platform is configured.
    pub fn called(&self, platform: Platform, kind: RepresentationKind) -> Noun {
        self.get(platform)
            .map_or_else(|| kind.general_name(), |module| module.rules().called(kind))
    }

    /// The platforms registered, in a stable order.
    pub fn platforms(&self) -> impl Iterator<Item = Platform> + '_ {
        self.platforms.keys().copied()
    }
}

impl std::fmt::Debug for PlatformRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.platforms.keys()).finish()
    }
}
