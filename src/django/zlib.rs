//! `zlib.compress(data)` as CPython does it: level 6 through the C zlib
//! itself (flate2's `zlib` back end), since Django signs the base64 of these
//! bytes and only the same compressor gives the same compressed session
//! data and `signing.dumps(..., compress=True)` output. Any deflate stream
//! decodes alike; this matters for byte-identical output, which the vectors
//! check.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

/// zlib's default level, which `zlib.compress` uses.
const LEVEL: u32 = 6;

pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 16),
        Compression::new(LEVEL),
    );
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;
    use sha2::{Digest, Sha256};
    use std::io::Read;

    /// The deterministic inputs `make_vectors.py` compressed with CPython's
    /// zlib (a 64-bit LCG over an alphabet, or repeated phrases).
    fn generate(spec: &serde_json::Value) -> Vec<u8> {
        let len = spec["len"].as_u64().unwrap() as usize;
        // code points 0..=255, as Python's latin-1 encoding of the alphabet
        let alphabet: Vec<u8> = vectors::str(spec, "alphabet")
            .chars()
            .map(|c| c as u8)
            .collect();
        let mut state = spec["seed"].as_u64().unwrap();
        let run = spec["run"].as_u64().unwrap() as usize;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pick = alphabet[((state >> 33) % alphabet.len() as u64) as usize];
            for _ in 0..((state >> 20) as usize % run + 1) {
                out.push(pick);
            }
        }
        out.truncate(len);
        out
    }

    #[test]
    fn compress_matches_cpython_zlib() {
        let cases = vectors::list("zlib");
        assert!(cases.len() >= 8);
        for case in cases {
            let data = match case.get("hex") {
                Some(h) => hex::decode(h.as_str().unwrap()).unwrap(),
                None => generate(&case["generate"]),
            };
            assert_eq!(
                hex::encode(Sha256::digest(&data)),
                vectors::str(case, "input_sha256")
            );
            let ours = compress(&data);
            assert_eq!(
                ours.len() as u64,
                case["compressed_len"].as_u64().unwrap(),
                "{case}"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&ours)),
                vectors::str(case, "compressed_sha256")
            );
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(ours.as_slice())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}
