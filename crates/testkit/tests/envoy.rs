//! `Envoy` launches the real Envoy: admin address, listener discovery on port 0, readiness.

use bowline_testkit::{get, proxy_request, Envoy};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// A static listener on port 0 answering 200 "hello from envoy" for every request.
const BOOTSTRAP: &str = r#"
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
    - name: hello
      address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: hello
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "hello from envoy" } }
"#;

#[tokio::test]
async fn two_envoys_start_side_by_side_and_report_their_bound_listeners() {
    let first = Envoy::start_named("envoy-a", BOOTSTRAP).await.unwrap();
    let second = Envoy::start_named("envoy-b", BOOTSTRAP).await.unwrap();
    for envoy in [&first, &second] {
        envoy.wait_ready(T).await.unwrap();
        let addr = envoy.listener_addr("hello", T).await.unwrap();
        assert_ne!(addr.port(), 0);
        let response = get(addr, "/", &[], T).await.unwrap();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "hello from envoy")
        );
        let response = proxy_request(addr, "GET", "http://anything.example:80/x", &[], T)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert!(envoy
            .get_admin("/server_info")
            .await
            .unwrap()
            .contains("1.40"));
    }
    assert_ne!(first.admin_addr(), second.admin_addr());
}

#[tokio::test]
async fn listener_addr_times_out_with_the_listeners_it_saw() {
    let envoy = Envoy::start(BOOTSTRAP).await.unwrap();
    let err = envoy
        .listener_addr("missing", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("\"hello\""), "{err:#}");
}

#[test]
fn validate_accepts_a_good_bootstrap_and_explains_a_bad_one() {
    Envoy::validate(BOOTSTRAP).unwrap();
    let err = Envoy::validate("admin: { address: { socket_address: { port_value: 70000 } } }")
        .unwrap_err();
    assert!(format!("{err:#}").contains("rejected"), "{err:#}");
}
