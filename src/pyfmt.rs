//! Python-compatible text formatting.
//!
//! The original pipeline names files after `str(float(t))` and writes CSV floats with Python's
//! `repr`, so users' notebooks depend on those exact strings. These helpers reproduce them.

/// Formats `x` exactly as Python's `repr(float(x))` does (`1.5`, `10.0`, `1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, like Python's repr.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let body = if (-4..16).contains(&exp) {
        let point = exp + 1;
        if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        }
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    };
    format!("{sign}{body}")
}

/// The threshold tag used in the original's file names: `str(float(t)).replace(".", "_")`.
pub fn threshold_tag(t: f64) -> String {
    float_repr(t).replace('.', "_")
}

/// The original's "neat" SAE id: every `.` and `/` replaced by `_`.
pub fn neat_sae_id(sae_id: &str) -> String {
    sae_id.replace(['.', '/'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings are what CPython 3 prints for repr(float(x)).
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.0, "0.0"),
            (10.0, "10.0"),
            (0.1, "0.1"),
            (27667.0, "27667.0"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e16, "1.5e+16"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5, "-2.5"),
            (0.0009765625, "0.0009765625"),
            (0.8104276870951117, "0.8104276870951117"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(*x), *want, "repr of {x}");
        }
    }

    #[test]
    fn threshold_tags_and_neat_ids() {
        assert_eq!(threshold_tag(1.5), "1_5");
        assert_eq!(threshold_tag(0.0), "0_0");
        assert_eq!(threshold_tag(10.0), "10_0");
        assert_eq!(threshold_tag(0.1), "0_1");
        assert_eq!(
            neat_sae_id("blocks.8.hook_resid_pre_24576"),
            "blocks_8_hook_resid_pre_24576"
        );
        assert_eq!(
            neat_sae_id("layer_12/width_16k/canonical"),
            "layer_12_width_16k_canonical"
        );
    }
}
