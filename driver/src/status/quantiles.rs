//! Quantiles of task metrics, the way Spark's `AppStatusStore.taskSummary` takes
//! them: over the successful tasks of a stage attempt, sorted, the value at index
//! `min(floor(q × n), n − 1)` for each quantile q.

/// The quantiles Spark's UI shows: min, 25th percentile, median, 75th percentile, max.
pub const UI_QUANTILES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// The values at quantiles `qs` (each in 0..=1) of `values`; None when `values` is empty.
pub fn quantiles(values: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(qs.iter().map(|q| sorted[((q.clamp(0.0, 1.0) * n as f64) as usize).min(n - 1)]).collect())
}

/// Parses Spark's `quantiles` query parameter: comma-separated numbers in 0..=1.
///
/// Errors: a value that is not a number or outside 0..=1 (the message names it).
pub fn parse_quantiles(text: &str) -> Result<Vec<f64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<f64>() {
            Ok(q) if (0.0..=1.0).contains(&q) => Ok(q),
            _ => Err(format!("bad quantile {s:?}: quantiles are numbers between 0 and 1")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_sparks_indices() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // n = 10: indices 0, 2, 5, 7, 9.
        assert_eq!(quantiles(&v, &UI_QUANTILES), Some(vec![1.0, 3.0, 6.0, 8.0, 10.0]));
        assert_eq!(quantiles(&[5.0], &UI_QUANTILES), Some(vec![5.0; 5]));
        assert_eq!(quantiles(&[], &UI_QUANTILES), None);
        let shuffled = [9.0, 1.0, 4.0, 2.0];
        assert_eq!(quantiles(&shuffled, &[0.0, 0.5, 1.0]), Some(vec![1.0, 4.0, 9.0]));
    }

    #[test]
    fn parses_the_query_parameter() {
        assert_eq!(parse_quantiles("0.01,0.5, 0.99"), Ok(vec![0.01, 0.5, 0.99]));
        assert!(parse_quantiles("0.5,2").is_err());
        assert!(parse_quantiles("x").is_err());
    }
}
