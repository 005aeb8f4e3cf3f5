//! Python's `ipaddress` reading of address text (3.11) and Django's checks
//! built on it (`django.utils.ipv6.is_valid_ipv6_address`,
//! `django.core.validators.validate_ipv46_address`). `EmailValidator` reads
//! `[...]` domain literals with them and `urlsplit` bracketed hosts.
//!
//! Rust's own `Ipv4Addr`/`Ipv6Addr` parsers are not used: they read some
//! texts Python refuses (`fe80::1%` is one for `urlsplit`'s scope split),
//! and the vectors are Python's answers.

/// `IPv4Address(text)`: four dot-separated decimal octets, each of one to
/// three ASCII digits, no leading zero, at most 255. `None` where Python
/// raises `AddressValueError`.
pub fn ipv4_address(text: &str) -> Option<u32> {
    if text.contains('/') {
        return None;
    }
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    octets.iter().try_fold(0u32, |address, octet| {
        Some(address << 8 | parse_octet(octet)?)
    })
}

/// `_BaseV4._parse_octet`.
fn parse_octet(octet: &str) -> Option<u32> {
    if octet.is_empty() || octet.len() > 3 || !octet.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if octet != "0" && octet.starts_with('0') {
        return None;
    }
    let value: u32 = octet.parse().ok()?;
    (value <= 255).then_some(value)
}

/// `IPv6Address(text)`: the address and its scope id (`%…`, which must not
/// be empty nor hold another `%`). `None` where Python raises.
pub fn ipv6_address(text: &str) -> Option<(u128, Option<&str>)> {
    if text.contains('/') {
        return None;
    }
    let (address, scope) = match text.split_once('%') {
        None => (text, None),
        Some((_, scope)) if scope.is_empty() || scope.contains('%') => return None,
        Some((address, scope)) => (address, Some(scope)),
    };
    Some((ipv6_int(address)?, scope))
}

/// The eight groups of an IPv6 address.
const HEXTETS: usize = 8;

/// `_BaseV6._ip_int_from_string`, step by step.
fn ipv6_int(text: &str) -> Option<u128> {
    if text.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = text.split(':').map(str::to_string).collect();
    if parts.len() < 3 {
        return None;
    }
    // An IPv4 suffix becomes two hextets.
    if parts.last().is_some_and(|last| last.contains('.')) {
        let ipv4 = ipv4_address(&parts.pop().expect("three parts or more"))?;
        parts.push(format!("{:x}", ipv4 >> 16));
        parts.push(format!("{:x}", ipv4 & 0xffff));
    }
    if parts.len() > HEXTETS + 1 {
        return None;
    }
    // The one `::` (an empty part other than the first or last).
    let mut skip_index = None;
    for (i, part) in parts.iter().enumerate().take(parts.len() - 1).skip(1) {
        if part.is_empty() {
            if skip_index.is_some() {
                return None;
            }
            skip_index = Some(i);
        }
    }
    let (parts_hi, parts_lo, parts_skipped) = match skip_index {
        Some(skip) => {
            let mut hi = skip;
            let mut lo = parts.len() - skip - 1;
            if parts[0].is_empty() {
                hi -= 1;
                if hi != 0 {
                    return None;
                }
            }
            if parts[parts.len() - 1].is_empty() {
                lo -= 1;
                if lo != 0 {
                    return None;
                }
            }
            let skipped = HEXTETS.checked_sub(hi + lo).filter(|&s| s >= 1)?;
            (hi, lo, skipped)
        }
        None => {
            if parts.len() != HEXTETS || parts[0].is_empty() || parts[HEXTETS - 1].is_empty() {
                return None;
            }
            (HEXTETS, 0, 0)
        }
    };
    let mut address: u128 = 0;
    for part in &parts[..parts_hi] {
        address = address << 16 | parse_hextet(part)?;
    }
    address = address.checked_shl(16 * parts_skipped as u32).unwrap_or(0);
    for part in &parts[parts.len() - parts_lo..] {
        address = address << 16 | parse_hextet(part)?;
    }
    Some(address)
}

/// `_BaseV6._parse_hextet`: one to four ASCII hex digits.
fn parse_hextet(part: &str) -> Option<u128> {
    if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(part, 16).ok()
}

/// `django.utils.ipv6.MAX_IPV6_ADDRESS_LENGTH`.
pub const MAX_IPV6_ADDRESS_LENGTH: usize = 39;

/// `django.utils.ipv6.is_valid_ipv6_address` (for a string): at most 39
/// characters, then `IPv6Address`.
pub fn is_valid_ipv6_address(text: &str) -> bool {
    text.chars().count() <= MAX_IPV6_ADDRESS_LENGTH && ipv6_address(text).is_some()
}

/// `validate_ipv46_address` raises nothing: an IPv4 address, else an IPv6
/// one by `is_valid_ipv6_address`.
pub fn is_valid_ipv46_address(text: &str) -> bool {
    ipv4_address(text).is_some() || is_valid_ipv6_address(text)
}

/// `ipaddress.ip_address(text)` as `urlsplit`'s `_check_bracketed_host`
/// uses it: whether the text is an IPv4 address (which brackets must not
/// hold) or an IPv6 one; `None` when it is neither.
pub fn ip_address_is_v4(text: &str) -> Option<bool> {
    if ipv4_address(text).is_some() {
        Some(true)
    } else {
        ipv6_address(text).map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn addresses_read_as_python_and_django_read_them() {
        let cases = vectors::validators_list("ip_addresses");
        assert!(cases.len() >= 200, "{} vectors", cases.len());
        for case in cases {
            let text = vectors::str(case, "value");
            let expect = |field: &str| case[field].as_bool().expect("a boolean");
            assert_eq!(
                ipv4_address(text).is_some(),
                expect("ipv4"),
                "IPv4 {text:?}"
            );
            assert_eq!(
                ipv6_address(text).is_some(),
                expect("ipv6"),
                "IPv6 {text:?}"
            );
            if let (Some(value), Some((address, _))) =
                (case["ipv6_int"].as_str(), ipv6_address(text))
            {
                assert_eq!(address.to_string(), value, "IPv6 value of {text:?}");
            }
            if let (Some(value), Some(address)) = (case["ipv4_int"].as_u64(), ipv4_address(text)) {
                assert_eq!(u64::from(address), value, "IPv4 value of {text:?}");
            }
            assert_eq!(
                is_valid_ipv6_address(text),
                expect("django_ipv6"),
                "is_valid_ipv6_address({text:?})"
            );
            assert_eq!(
                is_valid_ipv46_address(text),
                expect("django_ipv46"),
                "validate_ipv46_address({text:?})"
            );
        }
    }
}
