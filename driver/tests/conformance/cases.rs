//! The Ember side of each conformance case: the twin, under the same name, of a
//! case in Record.scala, returning each element of its result as Spark's
//! `toString` prints it (`ember::SparkString`). Collections inside elements are
//! rendered sorted as `List(…)`, as the recorder renders them.

use ember::prelude::*;
use ember::{BoxIter, HashPartitioner, Result, SparkString};
use std::path::PathBuf;

/// What a case runs against: a context, the committed input files, and a fresh
/// directory for its outputs.
pub struct Env {
    pub sc: EmberContext,
    pub inputs: PathBuf,
    pub scratch: PathBuf,
}

impl Env {
    fn input(&self, name: &str) -> String {
        self.inputs.join(name).display().to_string()
    }
    fn scratch(&self, name: &str) -> String {
        self.scratch.join(name).display().to_string()
    }
    fn strings(&self, xs: &[&str], slices: usize) -> Rdd<String> {
        self.sc.parallelize(xs.iter().map(|s| s.to_string()).collect(), slices)
    }
    fn ints(&self) -> Rdd<i32> {
        self.sc.parallelize((1..=10).collect(), 3)
    }
    fn letters(&self) -> Rdd<String> {
        self.strings(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], 3)
    }
    fn dups(&self) -> Rdd<i32> {
        self.sc.parallelize(vec![3, 1, 3, 2, 1, 3, 5], 3)
    }
    fn ties(&self) -> Rdd<i32> {
        self.sc.parallelize(vec![5, 1, 5, 3, 5, 2, 1], 3)
    }
    fn doubles(&self) -> Rdd<f64> {
        self.sc.parallelize(vec![1.0, 2.5, -3.0, 4.0, 10.0, 0.5], 3)
    }
    /// Doubles with both zeros, two different NaNs (bit patterns) and infinities.
    fn float_keys(&self) -> Rdd<f64> {
        let odd_nan = f64::from_bits(0x7ff0_0000_0000_0001);
        let keys = vec![1.5, -0.0, f64::NAN, 0.0, 1.5, odd_nan, f64::NEG_INFINITY, 0.0, -1.0, f64::INFINITY];
        self.sc.parallelize(keys, 3)
    }
    fn pairs(&self) -> Rdd<(String, i32)> {
        let data = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6)];
        self.sc.parallelize(data.iter().map(|(k, v)| (k.to_string(), *v)).collect(), 3)
    }
    fn others(&self) -> Rdd<(String, String)> {
        let data = [("a", "x"), ("c", "y"), ("c", "z"), ("d", "w")];
        self.sc.parallelize(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), 2)
    }
    fn unsorted(&self) -> Rdd<(i32, String)> {
        let data = [(5, "e"), (1, "a"), (9, "i"), (3, "c"), (7, "g"), (2, "b"), (8, "h")];
        self.sc.parallelize(data.iter().map(|(k, v)| (*k, v.to_string())).collect(), 3)
    }
    fn empty_pairs(&self) -> Rdd<(String, i32)> {
        self.sc.parallelize(Vec::new(), 2)
    }
    fn empty_ints(&self, slices: usize) -> Rdd<i32> {
        self.sc.parallelize(Vec::new(), slices)
    }
    fn lines(&self, name: &str, min_partitions: usize) -> Result<Vec<String>> {
        self.sc.text_file(&self.input(name), min_partitions)?.collect()
    }
}

/// Each element as Spark prints it.
fn s<T: SparkString>(xs: impl IntoIterator<Item = T>) -> Vec<String> {
    xs.into_iter().map(|x| x.spark_string()).collect()
}

fn one(x: impl SparkString) -> Vec<String> {
    vec![x.spark_string()]
}

/// Each partition as `[a,b,c]` (Scala's `mkString("[", ",", "]")`).
fn glom<T: ember::Data + SparkString>(rdd: &Rdd<T>) -> Result<Vec<String>> {
    Ok(rdd.glom().collect()?.into_iter().map(|p| format!("[{}]", s(p).join(","))).collect())
}

/// A collection whose order Spark leaves open, sorted: `List(1, 3, 6)`.
fn list<T: SparkString + PartialOrd>(mut xs: Vec<T>) -> String {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    format!("List({})", s(xs).join(", "))
}

fn add(a: i32, b: i32) -> i32 {
    a + b
}

/// A case: its result, element by element, as Spark prints it.
pub type CaseFn = fn(&Env) -> Result<Vec<String>>;

macro_rules! cases {
    ($($name:ident($e:ident) $body:block)*) => {
        /// Every case, by the name Record.scala gives its twin.
        pub fn all() -> Vec<(&'static str, CaseFn)> {
            vec![$((stringify!($name), {
                fn case($e: &Env) -> Result<Vec<String>> $body
                case as CaseFn
            })),*]
        }
    };
}

cases! {
    // Creating RDDs: how elements are sliced into partitions.
    parallelize_slices(e) { glom(&e.ints()) }
    parallelize_more_slices_than_elements(e) { glom(&e.sc.parallelize(vec![1, 2, 3], 6)) }
    parallelize_empty(e) { glom(&e.empty_ints(3)) }
    parallelize_zero_slices(e) { Ok(s(e.sc.parallelize(vec![1, 2, 3], 0).collect()?)) }
    range_slices(e) { glom(&e.sc.range(0, 10, 3, 4)?) }
    range_negative_step(e) { Ok(s(e.sc.range(10, 0, -3, 2)?.collect()?)) }
    range_whole_i64_span(e) { Ok(s(e.sc.range(i64::MIN, i64::MAX, 1 << 62, 3)?.collect()?)) }
    range_empty(e) { glom(&e.sc.range(5, 5, 1, 2)?) }
    empty_rdd(e) {
        let empty = e.sc.empty_rdd::<i32>();
        Ok(vec![empty.num_partitions().to_string(), empty.count()?.to_string()])
    }

    // Element-wise transformations.
    map_filter_flat_map(e) {
        let rdd = e.ints().flat_map(|x: i32| vec![x; (x % 3) as usize]).filter(|x: &i32| x % 2 == 0).map(|x: i32| x * 10);
        Ok(s(rdd.collect()?))
    }
    map_partitions_with_index(e) {
        let rdd = e.ints().map_partitions_with_index(|i: usize, it: BoxIter<i32>| std::iter::once(format!("{i}:{}", it.sum::<i32>())));
        rdd.collect()
    }
    glom_after_filter(e) { glom(&e.ints().filter(|x: &i32| *x > 7)) }
    key_by(e) { Ok(s(e.ints().key_by(|x: &i32| x % 3).collect()?)) }
    group_by(e) {
        let groups = e.ints().group_by(|x: &i32| x % 3).collect()?;
        Ok(groups.into_iter().map(|(k, vs)| format!("({k},{})", list(vs.into_vec()))).collect())
    }

    // Set-like transformations.
    distinct(e) { Ok(s(e.dups().distinct().collect()?)) }
    distinct_strings(e) { e.strings(&["b", "a", "b", "é", "e\u{301}", "é"], 2).distinct().collect() }
    union_partitions(e) { glom(&e.ints().union(&e.sc.parallelize(vec![100, 200], 2))) }
    intersection(e) { Ok(s(e.dups().intersection(&e.sc.parallelize(vec![3, 3, 5, 7], 2)).collect()?)) }
    subtract_keeps_duplicates(e) { Ok(s(e.dups().subtract(&e.sc.parallelize(vec![3], 1)).collect()?)) }
    cartesian(e) { Ok(s(e.sc.parallelize(vec![1, 2], 2).cartesian(&e.strings(&["x", "y", "z"], 2)).collect()?)) }

    // Zips.
    zip(e) { Ok(s(e.ints().zip(&e.letters())?.collect()?)) }
    zip_different_partition_counts(e) { Ok(s(e.ints().zip(&e.sc.parallelize((1..=10).collect::<Vec<i32>>(), 2))?.collect()?)) }
    zip_different_partition_sizes(e) {
        Ok(s(e.sc.parallelize(vec![1, 2, 3, 4], 2).zip(&e.sc.parallelize(vec![1], 2))?.collect()?))
    }
    zip_with_index_empty_partitions(e) { Ok(s(e.strings(&["a", "b", "c"], 5).zip_with_index()?.collect()?)) }
    zip_with_unique_id(e) { Ok(s(e.strings(&["a", "b", "c", "d", "e"], 3).zip_with_unique_id().collect()?)) }
    zip_partitions(e) {
        let zipped = e.ints().zip_partitions(&e.letters(), |a: BoxIter<i32>, b: BoxIter<String>| {
            std::iter::once(format!("{}/{}", a.count(), b.collect::<String>()))
        })?;
        zipped.collect()
    }

    // Partition counts.
    coalesce(e) { glom(&e.sc.parallelize((1..=10).collect::<Vec<i32>>(), 5).coalesce(2)) }
    coalesce_more_than_existing(e) { Ok(one(e.ints().coalesce(10).num_partitions())) }
    coalesce_zero(e) { Ok(one(e.ints().coalesce(0).num_partitions())) }
    repartition(e) {
        let rdd = e.ints().repartition(4);
        Ok([one(rdd.num_partitions()), s(rdd.collect()?)].concat())
    }
    repartition_zero(e) { Ok(one(e.ints().repartition(0).num_partitions())) }

    // Actions.
    collect_order(e) { e.letters().collect() }
    count(e) { Ok(vec![e.ints().count()?.to_string(), e.empty_ints(4).count()?.to_string()]) }
    take_across_empty_partitions(e) { Ok(s(e.sc.parallelize(vec![1, 2, 3], 6).take(2)?)) }
    take_more_than_there_are(e) { Ok(s(e.ints().take(20)?)) }
    take_zero(e) { Ok(s(e.ints().take(0)?)) }
    first(e) { Ok(one(e.sc.parallelize(vec![7, 8], 4).first()?)) }
    first_of_empty(e) { Ok(one(e.empty_ints(2).first()?)) }
    top_ties(e) { Ok(s(e.ties().top(4)?)) }
    take_ordered_ties(e) { Ok(s(e.ties().take_ordered(4)?)) }
    top_more_than_there_are(e) { Ok(s(e.ties().top(20)?)) }
    take_ordered_by_key(e) { e.letters().take_ordered_by(3, |l: &String| -(l.chars().next().unwrap() as i32)) }
    top_by_key(e) { Ok(s(e.ints().top_by(3, |x: &i32| (x * 7) % 11)?)) }
    top_strings(e) { e.strings(&["b", "Z", "a", "é", "aa"], 2).top(5) }
    reduce(e) { Ok(one(e.ints().reduce(add)?)) }
    reduce_of_empty(e) { Ok(one(e.empty_ints(2).reduce(add)?)) }
    fold_zero_per_partition(e) { Ok(one(e.sc.parallelize(vec![1, 2, 3, 4], 3).fold(10, add)?)) }
    fold_of_empty(e) { Ok(one(e.empty_ints(2).fold(1, add)?)) }
    aggregate_zero_per_partition(e) { Ok(one(e.sc.parallelize(vec![1, 2, 3, 4], 3).aggregate(100, add, add)?)) }
    aggregate_of_empty(e) { Ok(one(e.empty_ints(3).aggregate(5, add, |a: i32, b: i32| a * b)?)) }
    tree_reduce(e) { Ok(one(e.sc.parallelize((1..=100).collect::<Vec<i32>>(), 7).tree_reduce(add, 2)?)) }
    tree_aggregate(e) { Ok(one(e.sc.parallelize((1..=100).collect::<Vec<i32>>(), 7).tree_aggregate(0, add, add, 3)?)) }
    count_by_value(e) { Ok(s(e.dups().count_by_value()?)) }
    is_empty(e) {
        Ok(vec![
            e.empty_ints(3).is_empty()?.to_string(),
            e.ints().filter(|x: &i32| *x > 100).is_empty()?.to_string(),
            e.sc.parallelize(vec![1], 4).is_empty()?.to_string(),
        ])
    }
    min_max_strings(e) {
        Ok(vec![e.letters().min()?, e.letters().max()?, e.strings(&["b", "Z", "é"], 2).max()?])
    }
    max_of_empty(e) { Ok(one(e.empty_ints(2).max()?)) }
    to_local_iterator(e) {
        Ok(s(e.sc.parallelize((1..=7).collect::<Vec<i32>>(), 4).to_local_iterator().collect::<Result<Vec<i32>>>()?))
    }

    // Numeric (Spark's DoubleRDDFunctions).
    sum_mean(e) { Ok(vec![e.doubles().sum()?.spark_string(), e.doubles().mean()?.spark_string()]) }
    variance_stdev(e) {
        let d = e.doubles();
        Ok(s([d.variance()?, d.stdev()?, d.sample_variance()?, d.sample_stdev()?]))
    }
    stats(e) { Ok(vec![e.doubles().stats()?.to_string()]) }
    stats_of_empty(e) { Ok(vec![e.sc.parallelize(Vec::<f64>::new(), 2).stats()?.to_string()]) }
    sum_of_empty(e) { Ok(one(e.sc.parallelize(Vec::<f64>::new(), 2).sum()?)) }
    histogram_even(e) {
        let (buckets, counts) = e.doubles().histogram(3)?;
        Ok(vec![s(buckets).join(","), s(counts).join(",")])
    }
    histogram_max_in_last_bucket(e) {
        Ok(s(e.sc.parallelize(vec![0.0, 5.0, 10.0, 10.0], 2).histogram_with_buckets(&[0.0, 5.0, 10.0])?))
    }
    histogram_out_of_range(e) {
        Ok(s(e.sc.parallelize(vec![-1.0, 0.0, 11.0, f64::NAN], 2).histogram_with_buckets(&[0.0, 5.0, 10.0])?))
    }
    histogram_one_value(e) {
        let (buckets, counts) = e.sc.parallelize(vec![2.0, 2.0], 2).histogram(4)?;
        Ok(vec![s(buckets).join(","), s(counts).join(",")])
    }
    histogram_of_empty(e) {
        let (buckets, counts) = e.sc.parallelize(Vec::<f64>::new(), 2).histogram(2)?;
        Ok(vec![s(buckets).join(","), s(counts).join(",")])
    }
    doubles_to_string(e) {
        let values = vec![
            1.0, -0.0, 0.0, 100.0, 1e7, 12345678.9, 1.5e-5, 0.001, 0.0001, 123456.789, 1e21, 1.0 / 3.0,
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX,
        ];
        e.sc.parallelize(values, 2).map(|x: f64| x.spark_string()).collect()
    }

    // Floating-point keys: java.lang.Double's equals and hashCode, and Double.compare.
    distinct_doubles(e) { Ok(s(e.float_keys().distinct().collect()?)) }
    reduce_by_key_doubles(e) { Ok(s(e.float_keys().map(|k: f64| (k, 1)).reduce_by_key(add).collect()?)) }
    group_by_key_doubles(e) {
        let groups = e.float_keys().zip_with_index()?.group_by_key().collect()?;
        Ok(groups.into_iter().map(|(k, vs)| format!("({},{})", k.spark_string(), list(vs.into_vec()))).collect())
    }
    join_doubles(e) {
        let right = vec![(f64::NAN, "r"), (0.0, "z"), (-0.0, "m"), (2.0, "x")];
        let right = e.sc.parallelize(right.into_iter().map(|(k, v)| (k, v.to_string())).collect(), 2);
        Ok(s(e.float_keys().map(|k: f64| (k, "l".to_string())).join(&right).collect()?))
    }
    subtract_doubles(e) { Ok(s(e.float_keys().subtract(&e.sc.parallelize(vec![f64::NAN, 0.0], 1)).collect()?)) }
    sort_by_key_doubles(e) { Ok(s(e.float_keys().map(|k: f64| (k, 0)).sort_by_key(true)?.keys().collect()?)) }
    sort_by_key_doubles_descending(e) {
        Ok(s(e.float_keys().map(|k: f64| (k, 0)).sort_by_key_with(false, 2)?.keys().collect()?))
    }
    sort_by_doubles(e) { Ok(s(e.float_keys().sort_by(|x: &f64| -x, true, 3)?.collect()?)) }
    top_doubles(e) { Ok(s(e.float_keys().top(4)?)) }
    take_ordered_doubles(e) { Ok(s(e.float_keys().take_ordered(4)?)) }
    min_max_doubles(e) {
        let k = e.float_keys();
        Ok(s([k.min()?, k.max()?, k.filter(|x: &f64| !x.is_nan()).max()?]))
    }
    sort_by_key_float_pairs(e) {
        let data = [((1.0, "b"), 1), ((f64::NAN, "a"), 2), ((-0.0, "c"), 3), ((0.0, "a"), 4), ((1.0, "a"), 5)];
        let data = data.into_iter().map(|((d, t), v)| ((d, t.to_string()), v)).collect();
        Ok(s(e.sc.parallelize(data, 2).sort_by_key(true)?.collect()?))
    }

    // Pair RDDs.
    reduce_by_key(e) { Ok(s(e.pairs().reduce_by_key(add).collect()?)) }
    group_by_key(e) {
        let groups = e.pairs().group_by_key().collect()?;
        Ok(groups.into_iter().map(|(k, vs)| format!("({k},{})", list(vs.into_vec()))).collect())
    }
    fold_by_key_zero_per_partition(e) { Ok(s(e.pairs().fold_by_key(10, add).collect()?)) }
    aggregate_by_key_zero_per_partition(e) { Ok(s(e.pairs().aggregate_by_key(100, add, add).collect()?)) }
    combine_by_key(e) {
        let combined = e.pairs().combine_by_key(
            |v: i32| vec![v],
            |mut c: Vec<i32>, v: i32| {
                c.push(v);
                c
            },
            |mut a: Vec<i32>, b: Vec<i32>| {
                a.extend(b);
                a
            },
        );
        Ok(combined.collect()?.into_iter().map(|(k, vs)| format!("({k},{})", list(vs))).collect())
    }
    count_by_key(e) { Ok(s(e.pairs().count_by_key()?)) }
    collect_as_map_last_wins(e) {
        let data = vec![("k".to_string(), 1), ("j".to_string(), 0), ("k".to_string(), 2), ("k".to_string(), 3)];
        Ok(s(e.sc.parallelize(data, 2).collect_as_map()?))
    }
    keys_values(e) { Ok([e.pairs().keys().collect()?, s(e.pairs().values().collect()?)].concat()) }
    map_values_flat_map_values(e) {
        Ok(s(e.pairs().map_values(|v: i32| v * 2).flat_map_values(|v: i32| 1..=(v % 3)).collect()?))
    }
    join_duplicate_keys(e) { Ok(s(e.pairs().join(&e.others()).collect()?)) }
    left_outer_join(e) { Ok(s(e.pairs().left_outer_join(&e.others()).collect()?)) }
    right_outer_join(e) { Ok(s(e.pairs().right_outer_join(&e.others()).collect()?)) }
    full_outer_join(e) { Ok(s(e.pairs().full_outer_join(&e.others()).collect()?)) }
    join_with_empty(e) { Ok(s(e.pairs().join(&e.sc.parallelize(Vec::<(String, i32)>::new(), 2)).collect()?)) }
    cogroup(e) {
        let groups = e.pairs().cogroup(&e.others()).collect()?;
        Ok(groups.into_iter().map(|(k, (a, b))| format!("({k},({},{}))", list(a), list(b))).collect())
    }
    cogroup_three(e) {
        let third = e.sc.parallelize(vec![("a".to_string(), 1.5), ("e".to_string(), 2.5)], 1);
        let groups = e.pairs().cogroup3(&e.others(), &third).collect()?;
        Ok(groups.into_iter().map(|(k, (a, b, c))| format!("({k},({},{},{}))", list(a), list(b), list(c))).collect())
    }
    group_with_four(e) {
        let third = e.sc.parallelize(vec![("a".to_string(), true)], 1);
        let fourth = e.sc.parallelize(vec![("f".to_string(), 'q')], 1);
        let groups = e.pairs().cogroup4(&e.others(), &third, &fourth).collect()?;
        Ok(groups
            .into_iter()
            .map(|(k, (a, b, c, d))| format!("({k},({},{},{},{}))", list(a), list(b), list(c), list(d)))
            .collect())
    }
    subtract_by_key(e) { Ok(s(e.pairs().subtract_by_key(&e.others()).collect()?)) }
    sort_by_key(e) { Ok(s(e.unsorted().sort_by_key(true)?.collect()?)) }
    sort_by_key_descending(e) { Ok(s(e.unsorted().sort_by_key_with(false, 2)?.collect()?)) }
    sort_by_key_partitions(e) { glom(&e.unsorted().sort_by_key_with(true, 3)?) }
    sort_by(e) { e.letters().sort_by(|l: &String| (l.chars().next().unwrap() as u32 * 7) % 13, true, 3)?.collect() }
    sort_by_strings_unicode(e) {
        e.strings(&["b", "Z", "a", "é", "aa", "", "e\u{301}"], 3).sort_by(|x: &String| x.clone(), true, 3)?.collect()
    }
    lookup(e) { Ok(s(e.pairs().lookup("a".to_string())?)) }
    lookup_missing(e) { Ok(s(e.pairs().lookup("zz".to_string())?)) }
    partition_by_count(e) { Ok(one(e.pairs().partition_by(HashPartitioner { partitions: 4 }).num_partitions())) }
    repartition_and_sort_within_partitions(e) {
        let sorted = e.unsorted().repartition_and_sort_within_partitions(HashPartitioner { partitions: 2 });
        sorted
            .map_partitions(|it: BoxIter<(i32, String)>| {
                let keys: Vec<i32> = it.map(|(k, _)| k).collect();
                std::iter::once(keys.is_sorted().to_string())
            })
            .collect()
    }

    // Files.
    text_file_no_trailing_newline(e) { e.lines("lf-no-trailing-newline.txt", 2) }
    text_file_crlf(e) { e.lines("crlf.txt", 2) }
    text_file_lone_cr(e) { e.lines("cr.txt", 2) }
    text_file_mixed_line_ends(e) { e.lines("mixed.txt", 1) }
    text_file_empty(e) { e.lines("empty.txt", 2) }
    text_file_unicode_split_boundaries(e) { e.lines("unicode.txt", 7) }
    text_file_crlf_split_between_cr_and_lf(e) { e.lines("crlf-split.txt", 16) }
    text_file_cr_splits(e) { e.lines("cr-split.txt", 9) }
    text_file_missing(e) { e.lines("no-such-file.txt", 2) }
    whole_text_files(e) {
        let files = e.sc.whole_text_files(&e.input("whole"), 2)?.collect()?;
        Ok(files
            .into_iter()
            .map(|(path, content)| format!("({},{content})", path.rsplit('/').next().unwrap_or(&path)))
            .collect())
    }
    save_as_text_file_pairs(e) {
        let dir = e.scratch("pairs");
        let data = vec![("a".to_string(), (1.0, Some(1))), ("b".to_string(), (2.5, None))];
        e.sc.parallelize(data, 2).save_as_text_file(&dir)?;
        e.sc.text_file(&dir, 2)?.collect()
    }
    save_as_text_file_existing_output(e) {
        let dir = e.scratch("twice");
        e.ints().save_as_text_file(&dir)?;
        e.ints().save_as_text_file(&dir)?;
        Ok(vec!["saved twice".into()])
    }
    object_file_round_trip(e) {
        let dir = e.scratch("objects");
        e.pairs().save_as_object_file(&dir)?;
        Ok(s(e.sc.object_file::<(String, i32)>(&dir)?.collect()?))
    }
    pipe(e) { e.letters().pipe("tr a-z A-Z").collect() }

    // More edges: empty sides, NaN, per-partition semantics.
    take_ordered_of_empty(e) { Ok(s(e.empty_ints(3).take_ordered(3)?)) }
    top_zero(e) { Ok(s(e.ints().top(0)?)) }
    take_after_empty_partitions(e) {
        Ok(s(e.sc.parallelize((1..=100).collect::<Vec<i32>>(), 10).filter(|x: &i32| *x > 95).take(3)?))
    }
    is_empty_first_partitions_empty(e) {
        Ok(one(e.sc.parallelize((1..=100).collect::<Vec<i32>>(), 10).filter(|x: &i32| *x > 95).is_empty()?))
    }
    distinct_of_empty(e) { Ok(s(e.empty_ints(3).distinct().collect()?)) }
    union_with_itself(e) { glom(&e.sc.parallelize(vec![1, 2], 2).union(&e.sc.parallelize(vec![1, 2], 2))) }
    union_with_empty(e) { glom(&e.ints().union(&e.empty_ints(3))) }
    cartesian_with_empty(e) { Ok(s(e.ints().cartesian(&e.empty_ints(3)).collect()?)) }
    subtract_empty(e) { Ok(s(e.dups().subtract(&e.empty_ints(3)).collect()?)) }
    zip_with_index_all_empty(e) { Ok(s(e.empty_ints(3).zip_with_index()?.collect()?)) }
    zip_with_unique_id_empty_partitions(e) { Ok(s(e.strings(&["a", "b"], 4).zip_with_unique_id().collect()?)) }
    coalesce_to_one(e) { glom(&e.sc.parallelize(vec![1, 2, 3], 6).coalesce(1)) }
    repartition_of_empty(e) {
        let rdd = e.empty_ints(3).repartition(5);
        Ok(vec![rdd.num_partitions().to_string(), rdd.count()?.to_string()])
    }
    flat_map_to_nothing(e) { Ok(s(e.ints().flat_map(|_x: i32| Vec::<i32>::new()).collect()?)) }
    aggregate_to_another_type(e) {
        let (sum, count) = e.ints().aggregate(
            (0, 0),
            |acc: (i32, i32), x: i32| (acc.0 + x, acc.1 + 1),
            |a: (i32, i32), b: (i32, i32)| (a.0 + b.0, a.1 + b.1),
        )?;
        Ok(one((sum, count)))
    }
    reduce_by_key_of_empty(e) { Ok(s(e.empty_pairs().reduce_by_key(add).collect()?)) }
    fold_by_key_of_empty(e) { Ok(s(e.empty_pairs().fold_by_key(1, add).collect()?)) }
    count_by_key_of_empty(e) { Ok(s(e.empty_pairs().count_by_key()?)) }
    sort_by_key_of_empty(e) { Ok(s(e.empty_pairs().sort_by_key(true)?.collect()?)) }
    sort_by_key_duplicate_keys(e) {
        let rdd = e.sc.parallelize((1..=60).map(|i| (i % 7, i)).collect::<Vec<(i32, i32)>>(), 5);
        Ok(s(rdd.sort_by_key_with(true, 4)?.keys().collect()?))
    }
    sort_by_key_skewed_key(e) {
        let keys: Vec<i32> = std::iter::repeat_n(5, 30).chain([1, 2, 3, 9]).collect();
        glom(&e.sc.parallelize(keys, 2).map(|k: i32| (k, 0)).sort_by_key_with(true, 3)?.keys())
    }
    first_after_sort(e) { Ok(one(e.unsorted().sort_by_key(false)?.first()?)) }
    left_outer_join_empty_left(e) { Ok(s(e.empty_pairs().left_outer_join(&e.others()).collect()?)) }
    full_outer_join_with_empty(e) { Ok(s(e.empty_pairs().full_outer_join(&e.others()).collect()?)) }
    cogroup_with_empty(e) {
        let groups = e.empty_pairs().cogroup(&e.others()).collect()?;
        Ok(groups.into_iter().map(|(k, (a, b))| format!("({k},({},{}))", list(a), list(b))).collect())
    }
    lookup_of_empty(e) { Ok(s(e.empty_pairs().lookup("a".to_string())?)) }
    stats_with_nan(e) { Ok(vec![e.sc.parallelize(vec![1.0, f64::NAN, 3.0], 2).stats()?.to_string()]) }
    sum_with_nan(e) { Ok(one(e.sc.parallelize(vec![1.0, f64::NAN, 3.0], 2).sum()?)) }
    mean_of_empty(e) { Ok(one(e.sc.parallelize(Vec::<f64>::new(), 2).mean()?)) }
    variance_of_one(e) {
        let one_value = e.sc.parallelize(vec![4.0], 2);
        Ok(s([one_value.variance()?, one_value.sample_variance()?]))
    }
    histogram_unsorted_buckets(e) { Ok(s(e.doubles().histogram_with_buckets(&[5.0, 0.0, 10.0])?)) }
    histogram_one_bucket_bound(e) { Ok(s(e.doubles().histogram_with_buckets(&[1.0])?)) }
    histogram_with_infinity(e) {
        let (buckets, counts) = e.sc.parallelize(vec![1.0, f64::INFINITY], 2).histogram(2)?;
        Ok(vec![s(buckets).join(","), s(counts).join(",")])
    }
    pipe_runs_per_partition(e) { e.sc.parallelize(vec![1, 2], 4).pipe("echo hi").collect() }
    save_as_text_file_doubles(e) {
        let dir = e.scratch("doubles");
        e.sc.parallelize(vec![1e7, 0.5, -0.0, f64::NAN], 1).save_as_text_file(&dir)?;
        e.sc.text_file(&dir, 2)?.collect()
    }
    save_as_text_file_empty(e) {
        let dir = e.scratch("empty");
        e.empty_ints(3).save_as_text_file(&dir)?;
        e.sc.text_file(&dir, 2)?.collect()
    }

    // Argument checks.
    sample_fraction_above_one(e) { Ok(one(e.ints().sample(false, 1.5, 7).count()?)) }
    sample_negative_fraction(e) { Ok(one(e.ints().sample(true, -1.0, 7).count()?)) }
    sample_fraction_zero(e) { Ok(s(e.ints().sample(false, 0.0, 7).collect()?)) }
    sample_fraction_one(e) { Ok(s(e.ints().sample(false, 1.0, 7).collect()?)) }
}
