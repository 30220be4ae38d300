//! How records are shown by `print` and written by `save_as_text_files`: as
//! Spark's `toString` shows them (Scala's forms), so `("buen", 2)` is `(buen,2)`.

/// A record's text as Spark shows it: strings bare, tuples `(a,b)`, options
/// `Some(x)`/`None`, sequences `[a, b]`. Implement it for your own types to
/// `print` or save them.
pub trait SparkString {
    fn spark_string(&self) -> String;
}

macro_rules! via_display {
    ($($t:ty),*) => {
        $(impl SparkString for $t {
            fn spark_string(&self) -> String {
                self.to_string()
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
}
