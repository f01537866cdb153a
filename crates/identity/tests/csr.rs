//! The CA over Istio's CSR API on a real gRPC server, the agent that fetches and rotates,
//! and mutual TLS between two workload identities with the SPIFFE verifier.

use bowline_identity::agent::{fetch, renewal_time};
use bowline_identity::api::{create_certificate, CaEndpoint, RequestError};
use bowline_identity::control::{accept_tls, ClientTls, ServerCert, CONTROL_PLANE_NAME};
use bowline_identity::tls::{CurrentCert, MeshClientVerifier, SanVerifier, Trust};
use bowline_identity::{
    Agent, AgentConfig, Ca, CertificateService, IdentityHandle, SpiffeId, Tokens, TtlPolicy,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct TestCa {
    endpoint: CaEndpoint,
    tokens: Tokens,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_ca(max_ttl: Duration) -> TestCa {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(Ca::load_or_create(dir.path()).unwrap());
    let tokens = Tokens::default();
    let service = CertificateService::new(
        ca,
        tokens.clone(),
        TtlPolicy {
            default: Duration::from_secs(3600),
            max: max_ttl,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    TestCa {
        endpoint: CaEndpoint { addr, tls: None },
        tokens,
        _dir: dir,
        _stop: stop,
    }
}

fn config(ca: &TestCa, token: &str, ttl: Option<Duration>) -> AgentConfig {
    AgentConfig {
        ca: ca.endpoint.clone(),
        token: token.into(),
        token_file: None,
        ttl,
    }
}

#[tokio::test]
async fn a_known_token_gets_its_own_identity_and_the_requested_ttl_capped() {
    let ca = start_ca(Duration::from_secs(600)).await;
    let id = SpiffeId::new("cluster.local", "shop", "reviews");
    let token = ca.tokens.issue(id.clone());

    let cert = fetch(&config(&ca, &token, Some(Duration::from_secs(60))))
        .await
        .unwrap();
    assert_eq!(cert.identity, "spiffe://cluster.local/ns/shop/sa/reviews");
    let lifetime = cert.not_after.duration_since(cert.not_before).unwrap();
    // Back-dated by a minute for clock skew.
    assert_eq!(lifetime, Duration::from_secs(120));

    let long = fetch(&config(&ca, &token, Some(Duration::from_secs(86400))))
        .await
        .unwrap();
    let lifetime = long.not_after.duration_since(long.not_before).unwrap();
    assert_eq!(lifetime, Duration::from_secs(660), "capped at the maximum");

    let default = fetch(&config(&ca, &token, None)).await.unwrap();
    let lifetime = default
        .not_after
        .duration_since(default.not_before)
        .unwrap();
    assert_eq!(lifetime, Duration::from_secs(3660));

    let half = renewal_time(&cert, 0.0)
        .duration_since(cert.issued_at)
        .unwrap();
    // Half of what is left of 60 s when it arrived (the second boundary can cut a little).
    assert!(
        (Duration::from_secs(29)..=Duration::from_secs(30)).contains(&half),
        "{half:?}"
    );
}

#[tokio::test]
async fn an_unknown_or_missing_token_is_unauthenticated() {
    let ca = start_ca(Duration::from_secs(600)).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let err = create_certificate(&ca.endpoint, "not-a-token", csr, None)
        .await
        .unwrap_err();
    let RequestError::Refused(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn a_csr_asking_for_another_identity_is_refused() {
    let ca = start_ca(Duration::from_secs(600)).await;
    let token = ca
        .tokens
        .issue(SpiffeId::new("cluster.local", "shop", "reviews"));
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "spiffe://cluster.local/ns/shop/sa/admin"
            .try_into()
            .unwrap(),
    )];
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let err = create_certificate(&ca.endpoint, &token, csr, None)
        .await
        .unwrap_err();
    let RequestError::Refused(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("sa/admin"),
        "{}",
        status.message()
    );
}

/// A TLS server presenting `server`'s identity and requiring a mesh client certificate;
/// answers with the client's principal.
async fn mtls_server(server: IdentityHandle) -> std::net::SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(bowline_identity::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(MeshClientVerifier {
            identity: server.clone(),
            required: true,
        }))
        .with_cert_resolver(Arc::new(CurrentCert(server)));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| bowline_identity::tls::peer_principal(&c[0]))
                    .unwrap_or_default();
                let _ = tls.write_all(peer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

async fn call(
    addr: std::net::SocketAddr,
    client: IdentityHandle,
    expected: &str,
) -> Result<String, std::io::Error> {
    let want = expected.to_string();
    let verifier = SanVerifier {
        trust: Trust::Mesh(client.clone()),
        accept: Box::new(move |sans| sans.uris.contains(&want)),
        expected: expected.to_string(),
    };
    let config = rustls::ClientConfig::builder_with_provider(bowline_identity::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(CurrentCert(client)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("outbound").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn mutual_tls_checks_the_servers_spiffe_id_and_names_the_client() {
    let ca = start_ca(Duration::from_secs(600)).await;
    let first_deadline = Duration::from_secs(5);
    let reviews = Agent::start(
        config(
            &ca,
            &ca.tokens
                .issue(SpiffeId::new("cluster.local", "shop", "reviews")),
            None,
        ),
        first_deadline,
    )
    .await
    .unwrap();
    let product = Agent::start(
        config(
            &ca,
            &ca.tokens
                .issue(SpiffeId::new("cluster.local", "shop", "productpage")),
            None,
        ),
        first_deadline,
    )
    .await
    .unwrap();
    let addr = mtls_server(reviews.handle()).await;

    let seen = call(
        addr,
        product.handle(),
        "spiffe://cluster.local/ns/shop/sa/reviews",
    )
    .await
    .unwrap();
    assert_eq!(seen, "spiffe://cluster.local/ns/shop/sa/productpage");

    let err = call(
        addr,
        product.handle(),
        "spiffe://cluster.local/ns/shop/sa/ratings",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("do not match"), "{err}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let ours = start_ca(Duration::from_secs(600)).await;
    let theirs = start_ca(Duration::from_secs(600)).await;
    let id = SpiffeId::new("cluster.local", "shop", "reviews");
    let server = Agent::start(
        config(&ours, &ours.tokens.issue(id.clone()), None),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let stranger = Agent::start(
        config(&theirs, &theirs.tokens.issue(id.clone()), None),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let addr = mtls_server(server.handle()).await;
    // The stranger does not trust our root either: the handshake fails on its side first.
    assert!(call(addr, stranger.handle(), &id.to_string())
        .await
        .is_err());
}

#[tokio::test]
async fn the_agent_rotates_at_about_half_the_lifetime() {
    let ca = start_ca(Duration::from_secs(600)).await;
    let token = ca
        .tokens
        .issue(SpiffeId::new("cluster.local", "shop", "reviews"));
    // A 2 s certificate is renewed after about 1 s, each time with a new certificate.
    let agent = Agent::start(
        config(&ca, &token, Some(Duration::from_secs(2))),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let mut handle = agent.handle();
    let first = handle.current().unwrap().cert.chain_pem[0].clone();
    tokio::time::timeout(Duration::from_secs(10), handle.changed())
        .await
        .expect("rotated within 10 s");
    let second = handle.current().unwrap().cert.chain_pem[0].clone();
    assert_ne!(first, second);
}

/// The CA over TLS, as the control plane serves it: a client trusting the mesh root gets its
/// certificate; one trusting another root, or checking another name, never sends its token.
#[tokio::test]
async fn the_ca_over_tls_is_verified_against_the_mesh_root() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(Ca::load_or_create(dir.path()).unwrap());
    let tokens = Tokens::default();
    let service = CertificateService::new(
        ca.clone(),
        tokens.clone(),
        TtlPolicy {
            default: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        },
    );
    let server_cert = ServerCert::issue(&ca, "cluster.local", Duration::from_secs(3600)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = accept_tls(listener, server_cert.server_config().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );

    let token = tokens.issue(SpiffeId::new("cluster.local", "shop", "reviews"));
    let csr = || {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    };
    let mesh_root = ClientTls::new(ca.root_pem().as_bytes(), CONTROL_PLANE_NAME).unwrap();
    let good = CaEndpoint {
        addr,
        tls: Some(mesh_root),
    };
    let chain = create_certificate(&good, &token, csr(), None)
        .await
        .unwrap();
    assert!(chain.len() >= 2, "{chain:?}");

    // Another mesh's root: the handshake fails before any request is sent.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Ca::load_or_create(other_dir.path()).unwrap();
    let wrong_root = CaEndpoint {
        addr,
        tls: Some(ClientTls::new(other.root_pem().as_bytes(), CONTROL_PLANE_NAME).unwrap()),
    };
    let err = create_certificate(&wrong_root, &token, csr(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RequestError::Connect { message, .. } if message.contains("certificate")),
        "{err}"
    );
    // The right root, but a name the certificate does not carry.
    let wrong_name = CaEndpoint {
        addr,
        tls: Some(ClientTls::new(ca.root_pem().as_bytes(), "evil.example").unwrap()),
    };
    let err = create_certificate(&wrong_name, &token, csr(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Connect { .. }), "{err}");
    // Plaintext to the TLS port gets no answer either.
    let plain = CaEndpoint { addr, tls: None };
    assert!(create_certificate(&plain, &token, csr(), None)
        .await
        .is_err());
    server.abort();
}
