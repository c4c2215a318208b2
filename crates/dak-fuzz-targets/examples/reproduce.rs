//! Run one fuzz target on files: `cargo run -p dak-fuzz-targets --example reproduce -- TARGET FILE...`
//! (a crash or hang that cargo fuzz or the mutation test found, reproduced on stable).

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: reproduce TARGET FILE...");
    let (_, run) = dak_fuzz_targets::TARGETS.iter().find(|(n, _)| *n == target).expect("unknown target");
    for file in args {
        let data = std::fs::read(&file).expect("readable input");
        let started = std::time::Instant::now();
        run(&data);
        println!("{target} {file}: returned after {:.3} s", started.elapsed().as_secs_f64());
    }
}
