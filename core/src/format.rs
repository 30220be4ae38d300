//! How records are written as text by `save_as_text_file` (and shown by
//! streaming's `print` and `save_as_text_files`): as Spark's `toString` shows
//! them (Scala's forms), so the pair `("buen", 2)` is the line `(buen,2)`.

/// A record's text as Spark shows it: strings bare, tuples `(a,b)`, options
/// `Some(x)`/`None`, sequences `[a, b]`, floating-point numbers as the JVM
/// (`1.0`). Implement it for your own types to save or `print` them (often as
/// `self.to_string()`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no text form to save or print",
    label = "implement `ember::SparkString` for it (for example as `self.to_string()`), or map the elements to `String` first"
)]
pub trait SparkString {
    /// The text of one record, without a line end.
    fn spark_string(&self) -> String;

    /// Writes [`SparkString::spark_string`] to `out` (overridden where that can
    /// be done without building the `String`: saving writes every record so).
    fn write_spark_string(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(self.spark_string().as_bytes())
    }
}

macro_rules! via_display {
    ($($t:ty),*) => {
        $(impl SparkString for $t {
            fn spark_string(&self) -> String {
                self.to_string()
            }
            fn write_spark_string(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
                write!(out, "{self}")
            }
        })*
    };
}

via_display!(String, str, char, bool, i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl SparkString for f64 {
    /// As the JVM's `Double.toString`: `1.0`, `-0.0`, `123456.789`, `1.0E7`,
    /// `1.5E-5`, `NaN`, `Infinity`. Plain decimals for magnitudes in [10⁻³, 10⁷),
    /// computerized scientific notation outside; the shortest digits that read
    /// back as the same value.
    fn spark_string(&self) -> String {
        jvm_float(*self, *self)
    }
}

impl SparkString for f32 {
    /// As the JVM's `Float.toString`: the shortest digits of the `f32` (`0.1`,
    /// not the `f64` widening's `0.10000000149011612`), laid out as for `f64`.
    fn spark_string(&self) -> String {
        jvm_float(*self, f64::from(*self))
    }
}

/// The JVM's layout of `value` (`x` is the same number as an `f64`), from Rust's
/// shortest round-trip digits of it in its own type: `{}` for magnitudes in
/// [10⁻³, 10⁷), else `{:e}` (`1.5e-5`) rewritten as `1.5E-5`; a whole number
/// gets its `.0`. Only the layout used is formatted.
fn jvm_float<F: std::fmt::Display + std::fmt::LowerExp>(value: F, x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-Infinity" } else { "Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (1e-3..1e7).contains(&x.abs()) {
        let plain = format!("{value}");
        return if plain.contains('.') { plain } else { plain + ".0" };
    }
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` has an exponent");
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

/// A number as Java's `String.format("%.6f", x)` prints it: six decimals, and
/// `NaN`, `Infinity`, `-Infinity` for the values that have none (Spark's
/// `StatCounter.toString`).
pub fn jvm_fixed6(x: f64) -> String {
    if !x.is_finite() {
        return x.spark_string();
    }
    // Java rounds the shortest decimal digits of `x` (those `Double.toString`
    // prints) half-up, not the exact binary value half-to-even as `{:.6}` does:
    // 0.0078125 is `0.007813` there.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` has an exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    let exponent: i64 = exponent.parse().expect("an integer exponent");
    // digits[0] stands at 10^exponent; keep every power from the highest (at
    // least 10^0) down to 10^-6, and round on the digit at 10^-7.
    let (highest, lowest) = (exponent.max(0), -6i64);
    let mut kept = vec![0u8; (highest - lowest + 1) as usize];
    let mut round_up = false;
    for (i, d) in digits.iter().enumerate() {
        let power = exponent - i as i64;
        if power >= lowest {
            kept[(highest - power) as usize] = *d;
        } else if power == lowest - 1 {
            round_up = *d >= 5;
        }
    }
    if round_up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let text: String = kept.iter().map(|d| char::from(b'0' + d)).collect();
    let (whole, fraction) = text.split_at(text.len() - 6);
    let sign = if x.is_sign_negative() { "-" } else { "" };
    format!("{sign}{whole}.{fraction}")
}

impl<T: SparkString + ?Sized> SparkString for &T {
    fn spark_string(&self) -> String {
        (**self).spark_string()
    }
    fn write_spark_string(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        (**self).write_spark_string(out)
    }
}

impl<T: SparkString> SparkString for Option<T> {
    fn spark_string(&self) -> String {
        match self {
            Some(x) => format!("Some({})", x.spark_string()),
            None => "None".into(),
        }
    }
}

impl<T: SparkString> SparkString for Vec<T> {
    fn spark_string(&self) -> String {
        let items: Vec<String> = self.iter().map(SparkString::spark_string).collect();
        format!("[{}]", items.join(", "))
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: SparkString),+> SparkString for ($($name,)+) {
            #[allow(non_snake_case)]
            fn spark_string(&self) -> String {
                let ($($name,)+) = self;
                let parts: Vec<String> = vec![$($name.spark_string()),+];
                format!("({})", parts.join(","))
            }
            #[allow(non_snake_case)]
            fn write_spark_string(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
                let ($($name,)+) = self;
                let mut separator: &[u8] = b"(";
                $(
                    out.write_all(separator)?;
                    $name.write_spark_string(out)?;
                    separator = b",";
                )+
                let _ = separator;
                out.write_all(b")")
            }
        }
    };
}

tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);

#[cfg(test)]
mod tests {
    use super::SparkString;

    #[test]
    fn records_print_as_spark_prints_them() {
        assert_eq!(("buen".to_string(), 2u64).spark_string(), "(buen,2)");
        assert_eq!((1i32, (2.0f64, Some("x".to_string()))).spark_string(), "(1,(2.0,Some(x)))");
        assert_eq!(vec![1u8, 2].spark_string(), "[1, 2]");
        assert_eq!(0.5f64.spark_string(), "0.5");
    }

    #[test]
    fn floats_print_as_the_jvm_prints_them() {
        let cases = [
            (1e7, "1.0E7"),
            (9_999_999.5, "9999999.5"),
            (0.001, "0.001"),
            (0.000_999, "9.99E-4"),
            (-1.5e-5, "-1.5E-5"),
            (1e21, "1.0E21"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "-0.0"),
        ];
        for (x, jvm) in cases {
            assert_eq!(x.spark_string(), jvm, "{x:e}");
        }
        assert_eq!(0.1f32.spark_string(), "0.1");
        assert_eq!(1e10f32.spark_string(), "1.0E10");
        assert_eq!(f32::MAX.spark_string(), "3.4028235E38");
        assert_eq!(super::jvm_fixed6(f64::INFINITY), "Infinity");
        assert_eq!(super::jvm_fixed6(2.0 / 3.0), "0.666667");
        // Java rounds Double.toString's digits half-up.
        assert_eq!(super::jvm_fixed6(1.0 / 128.0), "0.007813");
        assert_eq!(super::jvm_fixed6(-2.5), "-2.500000");
        assert_eq!(super::jvm_fixed6(0.0), "0.000000");
        assert_eq!(super::jvm_fixed6(-1e-9), "-0.000000");
        assert_eq!(super::jvm_fixed6(999_999.999_999_9), "1000000.000000");
        assert_eq!(super::jvm_fixed6(9.223372036854776e18), "9223372036854776000.000000");
        assert_eq!(super::jvm_fixed6(1e-7), "0.000000");
        assert_eq!(super::jvm_fixed6(5e-7), "0.000001");
    }

    #[test]
    fn writing_gives_the_same_text() {
        let record = ("k".to_string(), (1.0f64, Some(2u8), vec![3i32]), -4i64);
        let mut out = Vec::new();
        record.write_spark_string(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), record.spark_string());
        assert_eq!(record.spark_string(), "(k,(1.0,Some(2),[3]),-4)");
    }
}
