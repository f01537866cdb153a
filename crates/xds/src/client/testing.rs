//! A recording handler for the unit tests of the pure parts.

use super::handler::{AdsHandler, ApplyResult, Update};
use crate::type_url;

/// Records every update; rejects the resource named `reject`; answers `need` as EDS names.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) updates: Vec<Update>,
    pub(crate) reject: Option<String>,
    pub(crate) need: Option<Vec<&'static str>>,
}

impl AdsHandler for Recorder {
    fn apply(&mut self, _type_url: &str, update: Update) -> ApplyResult {
        let mut result = ApplyResult::accepted();
        if let Some(bad) = &self.reject {
            if update.resources.iter().any(|r| &r.name == bad) {
                result = result.reject(bad.clone(), "test says no");
            }
        }
        if let Some(need) = &self.need {
            result = result.need(type_url::ENDPOINT, need.iter().copied());
        }
        self.updates.push(update);
        result
    }
}
