//! Sprig's float arithmetic (`addf`, `add1f`, `subf`, `mulf`, `divf`,
//! `maxf`, `minf`): each argument made a float64 and then an exact decimal
//! from its shortest form (shopspring/decimal's `NewFromFloat`), the
//! operation done on decimals (division to 16 decimal places, rounded half
//! away from zero), the result read back as the nearest float64 — so
//! `addf 1.1 2.2` is `3.3`, not `3.3000000000000003`. Numbers too large for
//! exact 128-bit decimals fall back to float64 arithmetic.

use super::Plain;
use super::numbers::to_float64;
use crate::value::Value;

/// Digits after the point a division keeps (shopspring's default).
const DIVISION_PRECISION: u32 = 16;

pub(crate) const FUNCTIONS: &[(&str, Plain)] = &[
    ("addf", |a| Ok(fold(&Value::Float(0.0), a, Op::Add))),
    ("add1f", |a| {
        let [x] = super::exactly("add1f", a)?;
        Ok(fold(x, &[Value::Int(1)], Op::Add))
    }),
    ("subf", |a| first_then("subf", a, Op::Sub)),
    ("mulf", |a| first_then("mulf", a, Op::Mul)),
    ("divf", |a| first_then("divf", a, Op::Div)),
    ("maxf", |a| extreme("maxf", a, f64::max)),
    ("minf", |a| extreme("minf", a, f64::min)),
];

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

fn first_then(name: &str, args: &[Value], op: Op) -> Result<Value, String> {
    let (first, rest) = super::first_and_rest(name, args)?;
    // shopspring/decimal panics on it, and Go's template reports the panic.
    if matches!(op, Op::Div) && rest.iter().any(|x| to_float64(x) == 0.0) {
        return Err("decimal division by 0".into());
    }
    Ok(fold(first, rest, op))
}

fn extreme(name: &str, args: &[Value], pick: fn(f64, f64) -> f64) -> Result<Value, String> {
    let (first, rest) = super::first_and_rest(name, args)?;
    Ok(Value::Float(
        rest.iter().map(to_float64).fold(to_float64(first), pick),
    ))
}

/// `first op rest[0] op rest[1] …`, in decimals.
fn fold(first: &Value, rest: &[Value], op: Op) -> Value {
    let start = to_float64(first);
    let exact = Decimal::of(start).and_then(|start| {
        rest.iter()
            .try_fold(start, |acc, x| acc.apply(op, Decimal::of(to_float64(x))?))
    });
    let result = match exact {
        Some(d) => d.to_f64(),
        None => rest.iter().map(to_float64).fold(start, |a, b| match op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
        }),
    };
    Value::Float(result)
}

/// `mantissa × 10^-scale`.
#[derive(Clone, Copy)]
struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    /// The exact decimal of a float's shortest form; `None` if it does not
    /// fit (or is not finite).
    fn of(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        let text = format!("{f}");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits = format!("{whole}{fraction}");
        Some(Decimal {
            mantissa: digits.parse().ok()?,
            scale: u32::try_from(fraction.len()).ok()?,
        })
    }

    fn rescaled(self, scale: u32) -> Option<i128> {
        self.mantissa
            .checked_mul(10i128.checked_pow(scale.checked_sub(self.scale)?)?)
    }

    fn apply(self, op: Op, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.rescaled(scale)?, other.rescaled(scale)?);
        Some(match op {
            Op::Add => Decimal {
                mantissa: a.checked_add(b)?,
                scale,
            },
            Op::Sub => Decimal {
                mantissa: a.checked_sub(b)?,
                scale,
            },
            Op::Mul => Decimal {
                mantissa: self.mantissa.checked_mul(other.mantissa)?,
                scale: self.scale.checked_add(other.scale)?,
            },
            Op::Div => {
                if b == 0 {
                    return None;
                }
                // a/b to DIVISION_PRECISION places, half away from zero.
                let numerator = a.checked_mul(10i128.checked_pow(DIVISION_PRECISION + 1)?)?;
                let tenths = numerator / b;
                let rounded = (tenths + tenths.signum() * 5) / 10;
                Decimal {
                    mantissa: rounded,
                    scale: DIVISION_PRECISION,
                }
            }
        })
    }

    /// The nearest float64.
    fn to_f64(self) -> f64 {
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        let sign = if self.mantissa < 0 { "-" } else { "" };
        format!("{sign}{whole}.{fraction}0")
            .parse()
            .unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    fn render(src: &str) -> String {
        crate::sprig::render_for_test(src).unwrap()
    }

    #[test]
    fn decimal_arithmetic_as_sprig_does_it() {
        // Printed by helm 4.1.4 for the same template.
        assert_eq!(
            render(
                r#"{{ addf 1.1 2.2 }} {{ subf 0.3 0.1 }} {{ mulf 1.1 3 }} {{ divf 1 3 }} {{ divf 2 3 }} {{ add1f 0.2 }} {{ maxf 1 2.5 "3" }} {{ minf 4 -1.5 }} {{ addf }} {{ mulf 1e20 1e20 }} {{ addf "x" 1 }}"#
            ),
            "3.3 0.2 3.3 0.3333333333333333 0.6666666666666667 1.2 3 -1.5 0 1e+40 1"
        );
        assert_eq!(
            render(
                r#"{{ divf 10 4 }} {{ mulf 0.1 0.2 }} {{ subf 5 }} {{ divf -2 3 }} {{ addf 0.1 0.2 0.3 }} {{ mulf 3.3333 3 }} {{ divf 1 7 }} {{ typeOf (addf 1 2) }}"#
            ),
            "2.5 0.02 5 -0.6666666666666667 0.6 9.9999 0.1428571428571429 float64"
        );
        let error = crate::sprig::render_for_test("{{ divf 1 0 }}").unwrap_err();
        assert!(
            error.contains("error calling divf: decimal division by 0"),
            "{error}"
        );
    }
}
