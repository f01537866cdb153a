//! Facts about a request head's raw bytes that hyper's parser does not pass on, and Envoy
//! refuses requests for: a fragment in the request target (hyper drops it from the URI) and
//! `Content-Length` beside `Transfer-Encoding` (hyper drops the length) — the classic request
//! smuggling pair, which Envoy answers with 400.
//!
//! A byte-at-a-time scan, fed as the head arrives: no buffering beyond a header name's first
//! bytes, so it costs nothing worth measuring and cannot be made to allocate.

/// What the scan saw in one head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadFacts {
    pub fragment: bool,
    pub content_length: bool,
    pub transfer_encoding: bool,
}

impl HeadFacts {
    /// The facts as three bits, to share them through an atomic.
    pub fn bits(self) -> u8 {
        u8::from(self.fragment)
            | u8::from(self.content_length) << 1
            | u8::from(self.transfer_encoding) << 2
    }

    pub fn from_bits(bits: u8) -> HeadFacts {
        HeadFacts {
            fragment: bits & 1 != 0,
            content_length: bits & 2 != 0,
            transfer_encoding: bits & 4 != 0,
        }
    }

    /// The body's length is stated twice, two ways.
    pub fn ambiguous_length(&self) -> bool {
        self.content_length && self.transfer_encoding
    }
}

/// The longest header name the scan needs to recognise, plus its colon.
const NAME: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Method,
    Target,
    Version,
    Header,
    Done,
}

#[derive(Debug, Clone, Default)]
pub struct HeadScan {
    state: State,
    /// The current header line's first bytes, lower-cased.
    name: [u8; NAME],
    len: usize,
    facts: HeadFacts,
}

impl HeadScan {
    pub fn facts(&self) -> HeadFacts {
        self.facts
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Done, _) => return,
                (State::Method, b' ') => State::Target,
                (State::Target, b'#') => {
                    self.facts.fragment = true;
                    State::Target
                }
                (State::Target, b' ') => State::Version,
                (State::Target | State::Version, b'\n') => {
                    self.len = 0;
                    State::Header
                }
                (State::Header, b'\n') if self.len == 0 => State::Done,
                (State::Header, b'\n') => {
                    self.end_header_line();
                    State::Header
                }
                (State::Header, b'\r') => State::Header,
                (State::Header, b) => {
                    if self.len < NAME {
                        self.name[self.len] = b.to_ascii_lowercase();
                    }
                    self.len += 1;
                    State::Header
                }
                (state, _) => state,
            };
        }
    }

    fn end_header_line(&mut self) {
        let name = &self.name[..self.len.min(NAME)];
        if name.starts_with(b"content-length:") {
            self.facts.content_length = true;
        } else if name.starts_with(b"transfer-encoding:") {
            self.facts.transfer_encoding = true;
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> HeadFacts {
        let mut s = HeadScan::default();
        for c in chunks {
            s.feed(c);
        }
        s.facts()
    }

    #[test]
    fn notices_fragments_and_double_lengths_across_reads() {
        let none = HeadFacts::default();
        let cases: [(&[&[u8]], HeadFacts); 6] = [
            (&[b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n"], none),
            (
                &[b"GET /a#", b"b HTTP/1.1\r\n\r\n"],
                HeadFacts {
                    fragment: true,
                    ..none
                },
            ),
            // A `#` in a header value is not in the target.
            (&[b"GET / HTTP/1.1\r\nx: #\r\n\r\n"], none),
            (
                &[
                    b"POST / HTTP/1.1\r\nContent-Len",
                    b"gth: 4\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
                ],
                HeadFacts {
                    content_length: true,
                    transfer_encoding: true,
                    ..none
                },
            ),
            (
                &[b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n"],
                HeadFacts {
                    content_length: true,
                    ..none
                },
            ),
            // Headers of the body (after the blank line) are not the head's.
            (&[b"POST / HTTP/1.1\r\n\r\ntransfer-encoding: x\r\n"], none),
        ];
        for (chunks, want) in cases {
            assert_eq!(scan(chunks), want, "{chunks:?}");
        }
        assert!(
            scan(&[b"P / H\r\ncontent-length: 1\r\ntransfer-encoding: c\r\n\r\n"])
                .ambiguous_length()
        );
    }
}
