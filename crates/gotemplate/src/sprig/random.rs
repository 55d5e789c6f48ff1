//! Sprig's random functions, made repeatable: each draws from the
//! execution's sequence ([`crate::Context::random`]), fixed by the set's
//! seed and the template's name. Rendering a chart twice gives the same
//! passwords and UUIDs, so a GitOps controller does not see a change on
//! every render (Helm draws new ones each time: Argo CD users' perpetual
//! OutOfSync, argo-cd#8551).

use std::sync::Arc;

use base64::Engine as _;

use super::{int, string};
use crate::value::Value;
use crate::{Context, Function};

/// The most characters or bytes one call makes.
const MAX_LENGTH: i64 = 1 << 20;

const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NUMERIC: &[u8] = b"0123456789";

/// The names [`functions`] gives.
pub(crate) const NAMES: [&str; 8] = [
    "randAlphaNum",
    "randAlpha",
    "randNumeric",
    "randAscii",
    "randBytes",
    "randInt",
    "uuidv4",
    "shuffle",
];

/// The random functions, by name.
pub(crate) fn functions() -> Vec<(&'static str, Function)> {
    vec![
        ("randAlphaNum", chars("randAlphaNum", ALPHANUMERIC)),
        ("randAlpha", chars("randAlpha", ALPHA)),
        ("randNumeric", chars("randNumeric", NUMERIC)),
        ("randAscii", ascii()),
        ("randBytes", bytes()),
        ("randInt", rand_int()),
        ("uuidv4", uuid()),
        ("shuffle", shuffle()),
    ]
}

fn length(name: &str, args: &[Value]) -> Result<usize, String> {
    match args {
        [n] => {
            let n = int(n)?;
            if !(0..=MAX_LENGTH).contains(&n) {
                return Err(format!(
                    "{name}: length {n} is out of range (0 to {MAX_LENGTH})"
                ));
            }
            Ok(n as usize)
        }
        _ => Err(format!(
            "wrong number of args for {name}: want 1 got {}",
            args.len()
        )),
    }
}

fn chars(name: &'static str, alphabet: &'static [u8]) -> Function {
    Arc::new(move |cx: &mut Context<'_, '_>, args: &[Value]| {
        let n = length(name, args)?;
        let text: String = (0..n)
            .map(|_| char::from(alphabet[(cx.random() % alphabet.len() as u64) as usize]))
            .collect();
        Ok(text.into())
    })
}

fn ascii() -> Function {
    Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| {
        let n = length("randAscii", args)?;
        let text: String = (0..n)
            .map(|_| char::from(b' ' + (cx.random() % 95) as u8))
            .collect();
        Ok(text.into())
    })
}

fn bytes() -> Function {
    Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| {
        let n = length("randBytes", args)?;
        let raw: Vec<u8> = (0..n).map(|_| cx.random() as u8).collect();
        Ok(base64::engine::general_purpose::STANDARD.encode(raw).into())
    })
}

fn rand_int() -> Function {
    Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
        [min, max] => {
            let (min, max) = (int(min)?, int(max)?);
            if max <= min {
                return Err("invalid argument to Intn".into());
            }
            let span = max.abs_diff(min);
            Ok(Value::Int(min.wrapping_add((cx.random() % span) as i64)))
        }
        _ => Err(format!(
            "wrong number of args for randInt: want 2 got {}",
            args.len()
        )),
    })
}

/// `N` bytes from the execution's sequence, eight per draw.
pub(crate) fn random_bytes<const N: usize>(cx: &mut Context<'_, '_>) -> [u8; N] {
    let mut bytes = [0; N];
    for chunk in bytes.chunks_mut(8) {
        let drawn = cx.random().to_le_bytes();
        chunk.copy_from_slice(&drawn[..chunk.len()]);
    }
    bytes
}

fn uuid() -> Function {
    Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| {
        if !args.is_empty() {
            return Err(format!(
                "wrong number of args for uuidv4: want 0 got {}",
                args.len()
            ));
        }
        let mut b: [u8; 16] = random_bytes(cx);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
        .into())
    })
}

fn shuffle() -> Function {
    Arc::new(|cx: &mut Context<'_, '_>, args: &[Value]| match args {
        [s] => {
            let mut chars: Vec<char> = string(s)?.chars().collect();
            for i in (1..chars.len()).rev() {
                let j = (cx.random() % (i as u64 + 1)) as usize;
                chars.swap(i, j);
            }
            Ok(chars.into_iter().collect::<String>().into())
        }
        _ => Err(format!(
            "wrong number of args for shuffle: want 1 got {}",
            args.len()
        )),
    })
}

#[cfg(test)]
mod tests {
    use crate::{Options, Templates, Value, add_sprig};

    fn render(seed: u64, name: &str, src: &str) -> String {
        let mut set = Templates::new(Options {
            seed,
            ..Options::default()
        });
        add_sprig(&mut set);
        set.parse(name, src).unwrap();
        set.execute(name, &Value::Nil).unwrap()
    }

    #[test]
    fn the_names_are_the_functions() {
        let names: Vec<&str> = super::functions().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, super::NAMES);
    }

    #[test]
    fn random_functions_repeat_for_the_same_seed_and_template() {
        let src = "{{ randAlphaNum 12 }} {{ randNumeric 4 }} {{ uuidv4 }} {{ randInt 5 10 }} {{ shuffle \"abcdef\" }}";
        let first = render(7, "a", src);
        assert_eq!(first, render(7, "a", src));
        assert_ne!(first, render(8, "a", src));
        assert_ne!(first, render(7, "b", src));
        let words: Vec<&str> = first.split(' ').collect();
        assert_eq!(words[0].len(), 12);
        assert!(words[0].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(words[1].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(words[2].len(), 36);
        assert_eq!(&words[2][14..15], "4");
        let n: i64 = words[3].parse().unwrap();
        assert!((5..10).contains(&n));
        let mut shuffled: Vec<char> = words[4].chars().collect();
        shuffled.sort_unstable();
        assert_eq!(shuffled.into_iter().collect::<String>(), "abcdef");
    }
}
