//! `is_empty`, `max`, `min`, `sum`, `stats`, `mean`, variances and `histogram`
//! against a sequential reference, over partitionings with empty partitions.

use ember::EmberError;
use ember::StatCounter;
use ember::prelude::*;

fn sc() -> EmberContext {
    EmberContext::new(Conf::new().master("local[2]").set("spark.ui.enabled", "false")).unwrap()
}

#[test]
fn summaries_equal_a_sequential_reference() {
    let sc = sc();
    let values: Vec<i64> = (0..997).map(|i| (i * 7919) % 1013 - 500).collect();
    for slices in [1, 3, 16, 2000] {
        let rdd = sc.parallelize(values.clone(), slices);
        assert!(!rdd.is_empty().unwrap());
        assert_eq!(rdd.max().unwrap(), *values.iter().max().unwrap());
        assert_eq!(rdd.min().unwrap(), *values.iter().min().unwrap());
        assert_eq!(rdd.sum().unwrap(), values.iter().sum::<i64>());
        let s = rdd.stats().unwrap();
        let want = StatCounter::of(values.iter().map(|&x| x as f64));
        assert_eq!(s.count(), 997);
        assert!((s.mean() - want.mean()).abs() < 1e-9, "{slices}: {s} vs {want}");
        assert!((s.variance() - want.variance()).abs() < 1e-6, "{slices}");
        assert!((rdd.sample_stdev().unwrap() - want.sample_stdev()).abs() < 1e-9, "{slices}");
        assert_eq!((s.max(), s.min()), (want.max(), want.min()));
    }
}

#[test]
fn empty_rdds_and_overflow_say_so() {
    let sc = sc();
    let empty = sc.parallelize(Vec::<i32>::new(), 3);
    assert!(empty.is_empty().unwrap());
    assert!(sc.empty_rdd::<i32>().is_empty().unwrap());
    assert!(sc.parallelize(vec![0u8], 4).filter(Fn!(|x: &u8| *x > 0)).is_empty().unwrap());
    assert!(matches!(empty.max(), Err(EmberError::Invalid(m)) if m.contains("empty")));
    assert!(matches!(empty.min(), Err(EmberError::Invalid(_))));
    assert_eq!(empty.sum().unwrap(), 0);
    assert_eq!(empty.mean().unwrap(), 0.0, "Spark's mean of nothing is 0.0");
    assert_eq!(empty.stats().unwrap().count(), 0);
    assert!(empty.histogram(3).is_err());
    let err = sc.parallelize(vec![i64::MAX, 1], 2).sum().unwrap_err().to_string();
    assert!(err.contains("overflows i64"), "{err}");
    assert_eq!(sc.parallelize(vec![0.5f64, 0.25], 2).sum().unwrap(), 0.75);
}

#[test]
fn histograms_as_spark_computes_them() {
    let sc = sc();
    // Spark's documented cases: even buckets from min to max, the last one closed.
    let (buckets, counts) = sc.parallelize(vec![1, 2, 3, 4], 2).histogram(2).unwrap();
    assert_eq!((buckets, counts), (vec![1.0, 2.5, 4.0], vec![2, 2]));
    let rdd = sc.parallelize(vec![1.0, 9.9, 10.0, 19.0, 50.0, 50.5, -3.0, f64::NAN], 3);
    assert_eq!(rdd.histogram_with_buckets(&[1.0, 10.0, 20.0, 50.0]).unwrap(), vec![2, 2, 1]);
    let (buckets, counts) = sc.parallelize(vec![7u32; 5], 2).histogram(4).unwrap();
    assert_eq!((buckets, counts), (vec![7.0, 7.0], vec![5]));
    assert!(rdd.histogram(2).is_err(), "NaN in the data");
    assert!(rdd.histogram(0).is_err());
    assert!(rdd.histogram_with_buckets(&[1.0]).is_err());
    assert!(rdd.histogram_with_buckets(&[2.0, 1.0]).is_err());
    // Against a reference: every element in exactly one bucket.
    let values: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
    let (buckets, counts) = sc.parallelize(values.clone(), 7).histogram(10).unwrap();
    assert_eq!(buckets.len(), 11);
    assert_eq!(counts.iter().sum::<u64>(), 1000);
    for (i, &c) in counts.iter().enumerate() {
        let last = i == counts.len() - 1;
        let want =
            values.iter().filter(|&&x| x >= buckets[i] && (x < buckets[i + 1] || last && x <= buckets[i + 1])).count();
        assert_eq!(c, want as u64, "bucket {i}");
    }
}
