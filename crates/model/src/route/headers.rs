//! Header mutations of a route (or of one weighted cluster).

use http::{HeaderMap, HeaderName, HeaderValue};

/// Request and response header mutations. Envoy removes first, then adds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderOps {
    pub request_add: Vec<HeaderAppend>,
    pub request_remove: Vec<HeaderName>,
    pub response_add: Vec<HeaderAppend>,
    pub response_remove: Vec<HeaderName>,
}

/// One header to add. Values are literal (Envoy's `%…%` formatters are refused at
/// conversion; `%%` has become `%`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderAppend {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub action: AppendAction,
    /// Add the header even when its value is empty. Envoy's default: false.
    pub keep_empty_value: bool,
}

/// Envoy's `HeaderAppendAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    /// Add another value (Envoy's default).
    #[default]
    AppendIfExistsOrAdd,
    /// Add only when the header is absent.
    AddIfAbsent,
    /// Replace every value, or add.
    OverwriteIfExistsOrAdd,
    /// Replace every value; do nothing when absent.
    OverwriteIfExists,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        *self == HeaderOps::default()
    }

    pub fn apply_to_request(&self, headers: &mut HeaderMap) {
        apply(&self.request_remove, &self.request_add, headers);
    }

    pub fn apply_to_response(&self, headers: &mut HeaderMap) {
        apply(&self.response_remove, &self.response_add, headers);
    }
}

fn apply(remove: &[HeaderName], add: &[HeaderAppend], headers: &mut HeaderMap) {
    for name in remove {
        headers.remove(name);
    }
    for h in add {
        if h.value.is_empty() && !h.keep_empty_value {
            continue;
        }
        let present = headers.contains_key(&h.name);
        match h.action {
            AppendAction::AppendIfExistsOrAdd => {
                headers.append(h.name.clone(), h.value.clone());
            }
            AppendAction::AddIfAbsent if !present => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::OverwriteIfExists if present => {
                headers.insert(h.name.clone(), h.value.clone());
            }
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists => {}
        }
    }
}
