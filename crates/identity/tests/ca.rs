//! The CA on real files and real X.509: what it generates and keeps, what a plugged-in CA
//! signs, and that a CSR cannot choose its own names, lifetime or CA-ness.

use bowline_identity::{Ca, CaSource, SpiffeId};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

fn der(pem: &str) -> Vec<u8> {
    parse_x509_pem(pem.as_bytes()).unwrap().1.contents
}

/// A CSR that asks for everything it must not get.
fn greedy_csr() -> (String, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["evil.example.com".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "cluster-admin");
    params.subject_alt_names.push(SanType::URI(
        "spiffe://cluster.local/ns/kube-system/sa/admin"
            .try_into()
            .unwrap(),
    ));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (csr, key)
}

fn id() -> SpiffeId {
    SpiffeId::new("cluster.local", "default", "bookinfo-reviews")
}

#[test]
fn generates_a_root_once_with_its_key_readable_only_by_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(&dir.path().join("ca")).unwrap();
    assert_eq!(ca.source, CaSource::Generated);
    let key = dir.path().join("ca/ca-key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "ca-key.pem mode {mode:o}");

    let again = Ca::load_or_create(&dir.path().join("ca")).unwrap();
    assert_eq!(again.source, CaSource::Persisted);
    assert_eq!(
        again.root_pem(),
        ca.root_pem(),
        "the second start keeps the root"
    );
}

#[test]
fn the_ca_sets_names_validity_and_usages_whatever_the_csr_asks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    let (csr, _) = greedy_csr();
    let ttl = Duration::from_secs(3600);
    let chain = ca.sign(&csr, &id(), ttl).unwrap();
    assert_eq!(chain.len(), 2, "leaf + root");
    assert_eq!(chain[1], ca.root_pem());

    let leaf_der = der(&chain[0]);
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let root_der = der(ca.root_pem());
    let (_, root) = x509_parser::parse_x509_certificate(&root_der).unwrap();
    leaf.verify_signature(Some(root.public_key()))
        .expect("signed by the root");
    assert_eq!(leaf.issuer(), root.subject());

    assert_eq!(
        leaf.subject().iter_attributes().count(),
        0,
        "no subject: {}",
        leaf.subject()
    );
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => format!("URI:{u}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sans,
        ["URI:spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    );
    assert!(!leaf.is_ca());
    let usage = leaf.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment() && !usage.key_cert_sign());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(lifetime, 3600 + 60, "TTL plus the back-dated minute");
}

#[test]
fn a_plugged_in_ca_signs_and_chains_to_its_root() {
    // The user's root and intermediate, in Istio's cacerts layout.
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = CertificateParams::default();
    root_params
        .distinguished_name
        .push(DnType::CommonName, "corp root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let inter_key = KeyPair::generate().unwrap();
    let mut inter_params = CertificateParams::default();
    inter_params
        .distinguished_name
        .push(DnType::CommonName, "corp mesh intermediate");
    inter_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    inter_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca-cert.pem", &inter.pem());
    write("ca-key.pem", &inter_key.serialize_pem());
    write("root-cert.pem", &root.pem());
    write("cert-chain.pem", &format!("{}{}", inter.pem(), root.pem()));

    let ca = Ca::load_or_create(dir.path()).unwrap();
    assert_eq!(ca.source, CaSource::PluggedIn);
    assert_eq!(ca.root_pem(), root.pem());
    let (csr, _) = greedy_csr();
    let chain = ca.sign(&csr, &id(), Duration::from_secs(600)).unwrap();
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(chain[1].trim(), inter.pem().trim());
    assert_eq!(chain[2].trim(), root.pem().trim());
    let leaf_der = der(&chain[0]);
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let inter_der = der(&inter.pem());
    let (_, inter_cert) = x509_parser::parse_x509_certificate(&inter_der).unwrap();
    leaf.verify_signature(Some(inter_cert.public_key()))
        .expect("signed by the plugged-in intermediate");
    assert!(
        !dir.path().join("ca-key.pem.new").exists()
            && std::fs::read_to_string(dir.path().join("ca-key.pem")).unwrap()
                == inter_key.serialize_pem(),
        "the user's files are left as they were"
    );
}

#[test]
fn refuses_garbage_and_zero_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::load_or_create(dir.path()).unwrap();
    assert!(ca
        .sign("not a csr", &id(), Duration::from_secs(60))
        .is_err());
    let (csr, _) = greedy_csr();
    assert!(ca.sign(&csr, &id(), Duration::ZERO).is_err());
}
