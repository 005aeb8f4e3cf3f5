//! A seeded mutation fuzzer for the fuzz tests (stable Rust has no
//! cargo-fuzz): random bytes, and mutations of valid inputs so that a case
//! gets past a parser's first check. A run is replayed from its seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed in this environment variable, or a fresh one (which the
/// caller prints, so that a failing run can be replayed).
pub fn seed_from_env(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, not {text:?}")),
        Err(_) => rand::thread_rng().gen(),
    }
}

/// A count from this environment variable, else the default.
pub fn count_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(text) => text
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{var} must be a number, not {text:?}")),
        Err(_) => default,
    }
}

/// Bytes that often sit on a parser's edges: separators of the formats
/// under test, line ends, NUL, bytes that are never valid UTF-8, and
/// lead bytes of multi-byte sequences.
const EDGE_BYTES: &[u8] = b"\0\x01\x7f\x80\xbf\xc0\xc3\xe2\xf0\xff\t\r\n \"'$%&+,-./:;=?@[\\]_`{}~";

/// Characters whose UTF-8 length or lower-casing surprises slicing code:
/// two-, three- and four-byte ones, `İ` (its lowercase is two
/// characters), a BOM, a line separator, a replacement character.
pub const TRICKY_CHARS: &[&str] = &[
    "é", "Я", "€", "😀", "İ", "\u{feff}", "\u{2028}", "\u{fffd}", "\u{0}", "ǅ", "ß",
];

/// Numbers as text that overflow, underflow or barely fit common integer
/// types, and spellings Python's `int()` accepts.
pub const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "+1",
    " 7 ",
    "1_0",
    "00",
    "127",
    "255",
    "256",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999",
    "1e9",
    "NaN",
    "",
];

pub struct Fuzzer {
    rng: StdRng,
}

impl Fuzzer {
    pub fn new(seed: u64) -> Fuzzer {
        Fuzzer {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.rng.gen_bool(probability)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length up to `max`, short ones far more often than long ones.
    pub fn length(&mut self, max: usize) -> usize {
        let scale = [8, 64, 512, max.max(1)][self.below(4)].min(max.max(1));
        self.below(scale + 1)
    }

    /// Random bytes, some drawn from [`EDGE_BYTES`].
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.length(max_len);
        (0..len)
            .map(|_| {
                if self.chance(0.3) {
                    *self.pick(EDGE_BYTES)
                } else {
                    self.rng.gen()
                }
            })
            .collect()
    }

    /// Random text: letters, digits, edge bytes that are ASCII, and
    /// [`TRICKY_CHARS`].
    pub fn text(&mut self, max_len: usize) -> String {
        let len = self.length(max_len);
        let mut text = String::new();
        for _ in 0..len {
            match self.below(4) {
                0 => text.push_str(*self.pick(TRICKY_CHARS)),
                1 => text.push(*self.pick(EDGE_BYTES) as char),
                _ => text.push(self.rng.gen_range(b'0'..=b'z') as char),
            }
        }
        text
    }

    /// One to four stacked mutations of `input`; `dictionary` holds tokens
    /// of the format (separators, keywords) to splice in.
    pub fn mutate(&mut self, input: &[u8], dictionary: &[&str]) -> Vec<u8> {
        let mut data = input.to_vec();
        for _ in 0..1 + self.below(4) {
            self.mutate_once(&mut data, dictionary);
        }
        data
    }

    /// [`Fuzzer::mutate`] on text; invalid UTF-8 becomes U+FFFD, as a
    /// caller that only takes `&str` would receive it.
    pub fn mutate_text(&mut self, input: &str, dictionary: &[&str]) -> String {
        String::from_utf8_lossy(&self.mutate(input.as_bytes(), dictionary)).into_owned()
    }

    fn mutate_once(&mut self, data: &mut Vec<u8>, dictionary: &[&str]) {
        let len = data.len();
        let at = self.below(len + 1);
        match self.below(10) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << self.below(8),
            1 if len > 0 => data[at.min(len - 1)] = *self.pick(EDGE_BYTES),
            2 if len > 0 => {
                let end = (at + 1 + self.length(16)).min(len);
                data.drain(at.min(len - 1)..end);
            }
            3 => {
                let inserted = self.bytes(16);
                data.splice(at..at, inserted);
            }
            4 if len > 0 => {
                // Repeat a slice of the input (grows separators, nesting).
                let start = self.below(len);
                let end = (start + 1 + self.length(64)).min(len);
                let copy = data[start..end].repeat(1 + self.below(4));
                data.splice(at..at, copy);
            }
            5 => data.truncate(at),
            6 => {
                let c = self.pick(TRICKY_CHARS).as_bytes().to_vec();
                data.splice(at..at, c);
            }
            7 => {
                let n = self.pick(EDGE_NUMBERS).as_bytes().to_vec();
                data.splice(at..at, n);
            }
            _ if !dictionary.is_empty() => {
                let token = self.pick(dictionary).as_bytes().to_vec();
                data.splice(at..at, token);
            }
            _ => data.insert(at, self.rng.gen()),
        }
    }
}
