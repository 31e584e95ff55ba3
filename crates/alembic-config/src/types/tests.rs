//! Tests of the validated newtypes.

use super::*;

#[test]
fn hostile_names_are_refused() {
    for s in [
        "../etc", "a\nb", "a\"b", "$(id)", "a\0b", "", "Upper", "edge", "a--b", "a-",
    ] {
        assert!(WorkloadName::parse(s).is_err(), "{s:?}");
    }
    assert!(WorkloadName::parse("council-api").is_ok());
}

#[test]
fn hostnames() {
    assert!(Hostname::parse("api.example.com").is_ok());
    for s in [
        "example", "-a.com", "a..com", "a.com.", "A.com", "1.2.3.4", "a b.com",
    ] {
        assert!(Hostname::parse(s).is_err(), "{s:?}");
    }
    let zone = Hostname::parse("example.com").unwrap();
    assert!(Hostname::parse("api.example.com").unwrap().is_within(&zone));
    assert!(!Hostname::parse("badexample.com").unwrap().is_within(&zone));
    assert_eq!(
        Hostname::parse("a.b.example.com")
            .unwrap()
            .record_name(&zone)
            .as_deref(),
        Some("a.b")
    );
    // A host outside the zone has no record name (it once panicked on slicing).
    assert_eq!(
        Hostname::parse("lab.example.net")
            .unwrap()
            .record_name(&Hostname::parse("lab.examle.tenp").unwrap()),
        None
    );
}

#[test]
fn cidrs() {
    assert!(Cidr::parse("0.0.0.0/0").unwrap().is_whole_internet());
    assert!(Cidr::parse("::/0").unwrap().is_whole_internet());
    assert!(Cidr::parse("203.0.113.10/32").is_ok());
    assert!(Cidr::parse("203.0.113.10/24").is_err());
    assert!(Cidr::parse("203.0.113.10").is_err());
    assert!(Cidr::parse("1.2.3.4/33").is_err());
}

#[test]
fn routes() {
    let r = Route::parse("api.example.com/v1").unwrap();
    assert_eq!(r.path.unwrap().as_str(), "/v1");
    assert!(Route::parse("api.example.com/../x").is_err());
    assert!(Route::parse("api.example.com/a b").is_err());
}

#[test]
fn bucket_names_and_object_keys() {
    for ok in ["abc", "alembic-tfstate", "a1-b2", &"a".repeat(63)] {
        assert!(BucketName::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "ab",
        "-abc",
        "abc-",
        "a--b",
        "Abc",
        "a.b.c",
        "a_b",
        &"a".repeat(64),
        "",
    ] {
        assert!(BucketName::parse(bad).is_err(), "{bad}");
    }
    for ok in [
        "terraform.tfstate",
        "alembic/terraform.tfstate",
        "a/b-c/d_e.1",
    ] {
        assert!(ObjectKey::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "/a", "a/", "a//b", "a/../b", "./a", "a b", "a\"b", "a\nb", "${x}",
    ] {
        assert!(ObjectKey::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn versions() {
    for ok in [
        "0.2.0",
        "1.0.0",
        "10.20.30",
        "1.0.0-rc.1",
        "1.0.0-alpha-1.0",
    ] {
        assert!(Version::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "1",
        "1.0",
        "v1.0.0",
        "=1.0.0",
        "^1.0.0",
        "1.0.0.0",
        "01.0.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0-a..b",
        "1.0.0+build",
        "latest",
        "1.0.0 ",
        "1.*.0",
    ] {
        assert!(Version::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn build_contexts() {
    for ok in [".", "services/api", "api", "a/b-c/d_e.1", ".docker/x"] {
        assert!(BuildContext::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "/srv/api", "../api", "a/../b", "a/..", "./a", "a/./b", "a//b", "a/", "a b", "a\"b",
        "-rf", "${{ x }}", "~/x",
    ] {
        assert!(BuildContext::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn registries() {
    for ok in [
        "ghcr.io/acme",
        "ghcr.io",
        "registry.digitalocean.com/acme/team",
        "localhost:5000/x",
        "reg.example.com:5000",
        "ghcr.io/acme-corp/a_b.c",
    ] {
        assert!(Registry::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "acme",
        "https://ghcr.io/acme",
        "ghcr.io/Acme",
        "ghcr.io/acme:1.0",
        "ghcr.io/acme@sha256:00",
        "ghcr.io/",
        "ghcr.io//a",
        "-ghcr.io/a",
        "ghcr.io/a b",
        "ghcr.io:0/a",
        "ghcr.io:99999/a",
    ] {
        assert!(Registry::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(Registry::parse("ghcr.io/acme").unwrap().host(), "ghcr.io");
    assert_eq!(
        Registry::parse("localhost:5000/x").unwrap().host(),
        "localhost:5000"
    );
}

#[test]
fn private_addresses() {
    for a in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "100.100.1.1",
        "::1",
        "fd00::1",
    ] {
        assert!(is_private_or_loopback(&a.parse().unwrap()), "{a}");
    }
    for a in ["0.0.0.0", "8.8.8.8", "::"] {
        assert!(!is_private_or_loopback(&a.parse().unwrap()), "{a}");
    }
}
