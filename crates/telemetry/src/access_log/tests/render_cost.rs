//! Rendering appends to the caller's buffer and allocates nothing else: the work is done
//! when the format is parsed. Counted per thread with a counting allocator, so tests running
//! in parallel do not disturb each other.

use serde_json::json;

use super::*;
use crate::alloc_count::on_this_thread as allocations_during;

#[test]
fn rendering_allocates_nothing_beyond_the_line() {
    let h = http_headers();
    let serde_json::Value::Object(custom) = json!({
        "mixed": "%REQ(:METHOD)% %REQ(:PATH):5% %RESPONSE_FLAGS_LONG% %START_TIME(%F %T.%6f %z)%",
        "nested": {"list": ["%RESP(:STATUS)%", "%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%"]},
    }) else {
        unreachable!()
    };
    let formats = [
        Format::envoy_default(),
        Format::istio_default(),
        Format::istio_default_json(),
        Format::json(&custom).unwrap(),
    ];
    let records = [http_record(&h), tcp_record(), AccessRecord::default()];
    let mut out = String::with_capacity(64 * 1024);
    for format in &formats {
        for record in &records {
            let n = allocations_during(|| format.render(record, &mut out));
            assert_eq!(n, 0, "{format:?} allocated {n} times");
        }
    }
    // The counter counts: a line into an empty buffer allocates.
    assert!(allocations_during(|| drop(formats[0].to_line(&records[0]))) > 0);
}
