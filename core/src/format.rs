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
    /// Like the JVM: `1.0`, not `1`.
    fn spark_string(&self) -> String {
        if self.is_finite() && self.fract() == 0.0 && self.abs() < 1e7 {
            format!("{self:.1}")
        } else {
            self.to_string()
        }
    }
}

impl SparkString for f32 {
    fn spark_string(&self) -> String {
        (*self as f64).spark_string()
    }
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
    fn writing_gives_the_same_text() {
        let record = ("k".to_string(), (1.0f64, Some(2u8), vec![3i32]), -4i64);
        let mut out = Vec::new();
        record.write_spark_string(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), record.spark_string());
        assert_eq!(record.spark_string(), "(k,(1.0,Some(2),[3]),-4)");
    }
}
