use ember::prelude::*;

#[test]
fn smoke() {
    let sc = EmberContext::local(2).unwrap();
    let k = 3i64;
    let r = sc.range(0, 1000, 1, 4).unwrap().map(Fn!(move |x: i64| x * k));
    assert_eq!(r.count().unwrap(), 1000);
    assert_eq!(r.filter(Fn!(|x: &i64| x % 2 == 0)).count().unwrap(), 500);
    let words = sc.parallelize(vec!["a b a".to_string(), "b c".to_string()], 2);
    let mut counts = words
        .flat_map(Fn!(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>()))
        .map(Fn!(|w: String| (w, 1u64)))
        .reduce_by_key(Fn!(|a: u64, b: u64| a + b))
        .collect()
        .unwrap();
    counts.sort();
    assert_eq!(counts, vec![("a".into(), 2), ("b".into(), 2), ("c".into(), 1)]);
    let sorted = sc
        .parallelize((0..100u32).rev().map(|x| (x, x)).collect(), 5)
        .sort_by_key(true)
        .unwrap()
        .keys()
        .collect()
        .unwrap();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    let acc = sc.accumulator(0u64);
    let a2 = acc.clone();
    sc.parallelize((0..10u64).collect(), 3).foreach(Fn!(move |x: u64| a2.add(x))).unwrap();
    assert_eq!(acc.value(), 45);
    let b = sc.broadcast(vec![1u64, 2, 3]).unwrap();
    let b2 = b.clone();
    let s: Vec<u64> = sc.parallelize(vec![0usize, 1, 2], 3).map(Fn!(move |i: usize| b2.value()[i])).collect().unwrap();
    assert_eq!(s, vec![1, 2, 3]);
    let err = sc
        .parallelize(vec![1, 2, 3], 3)
        .map(Fn!(|x: i32| if x == 2 { panic!("boom {x}") } else { x }))
        .collect()
        .unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("boom 2"));
    assert_eq!(sc.parallelize(vec![1, 2], 1).count().unwrap(), 2);
}
