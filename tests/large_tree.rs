//! Proto trees the size of googleapis, with real Buck2: each library's sources are parsed once
//! (its dependencies reach protoc as descriptor sets), a library's output holds its own files,
//! and editing one package reruns only what depends on it.
//!
//! The tree is generated, deterministically: packages in layers, each file importing files of
//! lower layers (the lowest, "common" ones, most often: googleapis' fan-in on `api`, `rpc`,
//! `type`) and the well-known types, with comments on every declaration (source info is most
//! of a googleapis descriptor set). `scripts/bench-tree` runs the benchmark (ignored here)
//! on a googleapis-sized one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::buck2::*;
use common::text;

/// A small deterministic generator (64-bit LCG, Knuth's constants): the same tree every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One package: its directory, its files' import paths, the packages it imports, and, per
/// file, the files of the tree it imports.
struct Package {
    dir: String,
    files: Vec<String>,
    deps: BTreeSet<usize>,
    imports: Vec<Vec<String>>,
}

/// The tree under `tree/`: `layers[i]` packages in layer i, `files` (min, max) per package.
struct Tree {
    packages: Vec<Package>,
}

const WKT: [(&str, &str); 4] = [
    (
        "google/protobuf/timestamp.proto",
        "google.protobuf.Timestamp",
    ),
    ("google/protobuf/duration.proto", "google.protobuf.Duration"),
    (
        "google/protobuf/field_mask.proto",
        "google.protobuf.FieldMask",
    ),
    ("google/protobuf/struct.proto", "google.protobuf.Struct"),
];

impl Tree {
    fn generate(p: &Project, layers: &[usize], files: (usize, usize)) -> Tree {
        let mut rng = Lcg(0x5eed0f9001);
        let mut packages: Vec<Package> = Vec::new();
        // Per package, per file: the message names it declares.
        let mut messages: Vec<Vec<Vec<String>>> = Vec::new();
        for (layer, &count) in layers.iter().enumerate() {
            for n in 0..count {
                let dir = format!("tree/l{layer}/p{n}/v1");
                let package = format!("tree.l{layer}.p{n}.v1");
                let nfiles = files.0 + rng.below(files.1 - files.0 + 1);
                let mut pkg = Package {
                    dir: dir.clone(),
                    files: Vec::new(),
                    deps: BTreeSet::new(),
                    imports: Vec::new(),
                };
                let mut declared = Vec::new();
                for f in 0..nfiles {
                    let mut imports: BTreeMap<String, String> = BTreeMap::new();
                    // Files of lower layers, skewed toward the lowest (the common packages).
                    if layer > 0 {
                        for _ in 0..1 + rng.below(4) {
                            let below = rng.below(layer).min(rng.below(layer));
                            let first: usize = layers[..below].iter().sum();
                            let i = first + rng.below(layers[below]);
                            let fi = rng.below(packages[i].files.len());
                            let m = &messages[i][fi][rng.below(messages[i][fi].len())];
                            let pkg_name = packages[i].dir.replace('/', ".");
                            imports
                                .insert(packages[i].files[fi].clone(), format!("{pkg_name}.{m}"));
                            pkg.deps.insert(i);
                        }
                    }
                    // An earlier file of the same package.
                    if f > 0 && rng.below(2) == 0 {
                        let g = rng.below(f);
                        let m: &Vec<String> = &declared[g];
                        imports.insert(
                            pkg.files[g].clone(),
                            format!("{package}.{}", m[rng.below(m.len())]),
                        );
                    }
                    if rng.below(2) == 0 {
                        let (path, ty) = WKT[rng.below(WKT.len())];
                        imports.insert(path.to_string(), ty.to_string());
                    }
                    let names: Vec<String> = (0..3 + rng.below(6))
                        .map(|m| format!("Thing{f}x{m}"))
                        .collect();
                    let path = format!("{dir}/file{f}.proto");
                    p.write(&path, &proto_file(&package, &imports, &names, &mut rng));
                    pkg.files.push(path);
                    pkg.imports.push(
                        imports
                            .keys()
                            .filter(|f| f.starts_with("tree/"))
                            .cloned()
                            .collect(),
                    );
                    declared.push(names);
                }
                messages.push(declared);
                packages.push(pkg);
            }
        }
        let tree = Tree { packages };
        tree.write_buck_files(p, "tree", "", "proto_library");
        tree
    }

    /// A `BUCK` file for each package, under `top/` in place of `tree/`: `rule(name = "lib",
    /// srcs, deps)` after `header`.
    fn write_buck_files(&self, p: &Project, top: &str, header: &str, rule: &str) {
        let dir = |i: usize| {
            self.packages[i]
                .dir
                .replacen("tree/", &format!("{top}/"), 1)
        };
        for (i, pkg) in self.packages.iter().enumerate() {
            let srcs: Vec<String> = pkg
                .files
                .iter()
                .map(|f| format!("\"{}\"", f.rsplit('/').next().unwrap()))
                .collect();
            let deps: Vec<String> = pkg
                .deps
                .iter()
                .map(|&d| format!("\"//{}:lib\"", dir(d)))
                .collect();
            p.write(
                &format!("{}/BUCK", dir(i)),
                &format!(
                    "{header}{rule}(\n    name = \"lib\",\n    srcs = [{}],\n    deps = [{}],\n    visibility = [\"PUBLIC\"],\n)\n",
                    srcs.join(", "),
                    deps.join(", ")
                ),
            );
        }
    }

    /// The same graph under `noop/`, each library a rule whose one action is `touch`: it
    /// gets the same inputs (the sources, copied, and every transitive dep's output) and so
    /// costs Buck2 what a library costs it, less protoc's work. What that graph takes is
    /// Buck2's own floor for this many actions here.
    fn write_noop_graph(&self, p: &Project) {
        p.write(
            "noop/defs.bzl",
            include_str!("fixtures/large_tree/noop.bzl"),
        );
        for f in self.packages.iter().flat_map(|pkg| &pkg.files) {
            let to = p.path().join(f.replacen("tree/", "noop/", 1));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p.path().join(f), to).unwrap();
        }
        self.write_buck_files(
            p,
            "noop",
            "load(\"//noop:defs.bzl\", \"noop_library\")\n\n",
            "noop_library",
        );
    }

    fn files(&self) -> usize {
        self.packages.iter().map(|p| p.files.len()).sum()
    }

    /// The last package nothing imports.
    fn leaf(&self) -> usize {
        (0..self.packages.len())
            .rev()
            .find(|&i| self.dependents(i).is_empty())
            .expect("a tree has leaves")
    }

    /// The package the most others import, directly or not.
    fn most_imported(&self) -> usize {
        (0..self.packages.len())
            .max_by_key(|&i| self.dependents(i).len())
            .expect("a tree has packages")
    }

    /// Packages whose files import a file of `i`, directly or not (through files, not whole
    /// packages: what a dep file of the sets used tracks).
    fn reaching(&self, i: usize) -> BTreeSet<usize> {
        let imports: BTreeMap<&str, &Vec<String>> = self
            .packages
            .iter()
            .flat_map(|p| p.files.iter().map(String::as_str).zip(&p.imports))
            .collect();
        let targets: BTreeSet<&str> = self.packages[i].files.iter().map(String::as_str).collect();
        let reaches = |start: &str| {
            let mut todo = vec![start];
            let mut seen = BTreeSet::new();
            while let Some(f) = todo.pop() {
                for g in imports[f] {
                    if targets.contains(g.as_str()) {
                        return true;
                    }
                    if seen.insert(g.as_str()) {
                        todo.push(g);
                    }
                }
            }
            false
        };
        (0..self.packages.len())
            .filter(|&j| j != i && self.packages[j].files.iter().any(|f| reaches(f)))
            .collect()
    }

    /// Packages that import `i`, directly or not.
    fn dependents(&self, i: usize) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        let mut changed = true;
        while changed {
            changed = false;
            for (j, p) in self.packages.iter().enumerate() {
                if !found.contains(&j)
                    && (p.deps.contains(&i) || p.deps.iter().any(|d| found.contains(d)))
                {
                    found.insert(j);
                    changed = true;
                }
            }
        }
        found
    }
}

/// A .proto file: a comment on every declaration, fields of scalars and of imported types.
fn proto_file(
    package: &str,
    imports: &BTreeMap<String, String>,
    names: &[String],
    rng: &mut Lcg,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated for the large-tree benchmark.\nsyntax = \"proto3\";\n\npackage {package};\n"
    );
    for path in imports.keys() {
        let _ = writeln!(s, "import \"{path}\";");
    }
    let types: Vec<&String> = imports.values().collect();
    // Enum values are scoped by package: prefixed by the file's first message.
    let e = names[0].to_uppercase();
    let _ = writeln!(
        s,
        "\n// The states a resource of this file moves through, in order.\nenum {}State {{\n  // Not set: the server never returns it.\n  {e}_STATE_UNSPECIFIED = 0;\n  // Being created; not usable yet.\n  {e}_CREATING = 1;\n  // Ready for use.\n  {e}_ACTIVE = 2;\n  // Being deleted; reads still succeed.\n  {e}_DELETING = 3;\n}}",
        names[0]
    );
    for name in names {
        let _ = writeln!(
            s,
            "\n// {name} holds what a {name} is: its identity, its state and what it refers to.\n// Clients read it; servers keep it consistent across updates, and a write that\n// races another fails with ABORTED rather than losing either (see the etag field).\nmessage {name} {{"
        );
        for f in 1..=4 + rng.below(11) {
            let ty = match rng.below(6) {
                0 if !types.is_empty() => types[rng.below(types.len())].as_str(),
                1 => "int64",
                2 => "bool",
                3 => "double",
                _ => "string",
            };
            let _ = writeln!(
                s,
                "\n  // The field number {f} of {name}: set by the server when the resource is\n  // created or updated, read by every client; output only unless noted.\n  {ty} field_{f} = {f};"
            );
        }
        let _ = writeln!(s, "}}");
    }
    if rng.below(3) == 0 {
        let m = &names[0];
        let _ = writeln!(
            s,
            "\n// Reads and writes the resources of this file.\nservice {m}Service {{\n  // Gets one {m} by its name.\n  rpc Get{m}({m}) returns ({m});\n  // Replaces one {m}, failing if its etag is stale.\n  rpc Update{m}({m}) returns ({m});\n}}"
        );
    }
    s
}

/// The wall time of `buck2 ARGS` (which must succeed).
fn timed(p: &Project, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = p.buck2(args);
    let took = start.elapsed();
    assert!(out.status.success(), "buck2 {args:?}: {}", text(&out));
    took
}

/// How many libraries the last command compiled (its `protoc_descriptor_set` actions that
/// ran: not those a dep file showed need not, which what-ran lists as `dep_file`).
fn compiles(p: &Project) -> usize {
    // `build\tTARGET (CONFIG) (CATEGORY IDENTIFIER)\tEXECUTOR\t...`
    p.ok(&["log", "what-ran"])
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|cols| cols.len() > 2 && cols[1].ends_with("(protoc_descriptor_set)"))
        .filter(|cols| cols[2] != "dep_file")
        .count()
}

/// A project with the tree and a protoc fetched (the fixture pins, from loopback).
fn project_with(layers: &[usize], files: (usize, usize)) -> (Loopback, Project, Tree) {
    let up = Loopback::start();
    let p = Project::as_committed();
    up.configure(&p);
    let tree = Tree::generate(&p, layers, files);
    p.ok(&["build", "toolchains//:protoc"]);
    (up, p, tree)
}

/// Append a comment to the first file of package `i` (its descriptor set changes: source info).
fn edit(p: &Project, tree: &Tree, i: usize) {
    let path = p.path().join(&tree.packages[i].files[0]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n// Edited.\nmessage Edited {}\n");
    std::fs::write(&path, text).unwrap();
}

#[test]
fn each_library_is_parsed_once_and_an_edit_reruns_only_its_dependents() {
    let (_up, p, tree) = project_with(&[3, 4, 4, 3], (2, 4));
    let out = p.buck2(&["build", "//tree/..."]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(compiles(&p), tree.packages.len());
    // A library's command line names its own files, and its deps only as descriptor sets.
    let last = tree.packages.len() - 1;
    let argv = p.ok(&[
        "aquery",
        &format!("//{}:lib", tree.packages[last].dir),
        "--output-attribute",
        "cmd",
    ]);
    for f in &tree.packages[last].files {
        assert!(argv.contains(f.as_str()), "{f} not compiled:\n{argv}");
    }
    assert!(argv.contains("--descriptor_set_in="), "{argv}");
    for d in &tree.packages[last].deps {
        assert!(
            !argv.contains(&format!("{}/file0.proto", tree.packages[*d].dir)),
            "a dep's source is parsed again:\n{argv}"
        );
    }
    // A leaf (nothing imports it): only its own action reruns.
    let leaf = tree.leaf();
    edit(&p, &tree, leaf);
    p.ok(&["build", "//tree/..."]);
    assert_eq!(compiles(&p), 1);
    // A common package: it and exactly the dependents whose files import one of its files,
    // directly or not (each library's dep file names the sets that hold what it reached).
    let common = tree.most_imported();
    let dependents = tree.dependents(common).len();
    let reaching = tree.reaching(common).len();
    assert!(reaching > 1 && reaching <= dependents);
    edit(&p, &tree, common);
    p.ok(&["build", "//tree/..."]);
    assert_eq!(compiles(&p), 1 + reaching, "{dependents} dependents");
    // A package some of whose dependents reach none of its files: those are not run again.
    let partial = (0..tree.packages.len())
        .max_by_key(|&i| tree.dependents(i).len() - tree.reaching(i).len())
        .unwrap();
    let reaching = tree.reaching(partial).len();
    assert!(reaching < tree.dependents(partial).len());
    edit(&p, &tree, partial);
    p.ok(&["build", "//tree/..."]);
    assert_eq!(compiles(&p), 1 + reaching);
    // A comment is not in what dependents read: its edit reruns the package alone.
    let path = p.path().join(&tree.packages[common].files[0]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n// Only a comment.\n");
    std::fs::write(&path, text).unwrap();
    p.ok(&["build", "//tree/..."]);
    assert_eq!(compiles(&p), 1);
    // The image of the top library has every file it reaches, and the well-known types.
    let image = outputs(
        &p,
        &format!("//{}:lib[image]", tree.packages[last].dir),
        &[],
    );
    let bytes = std::fs::read(&image[0]).unwrap();
    for f in &tree.packages[last].files {
        assert!(bytes.windows(f.len()).any(|w| w == f.as_bytes()), "{f}");
    }
}

/// Edit package `i`, build the tree: how long it took and how many libraries it compiled.
fn edit_and_build(p: &Project, tree: &Tree, i: usize) -> (Duration, usize) {
    edit(p, tree, i);
    let took = timed(p, &["build", "//tree/..."]);
    (took, compiles(p))
}

/// Median of `runs` timings.
fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Bytes of the files `buck2 build PATTERN --show-full-output` names, and of the dep file
/// beside each (`NAME.sets_used` next to `NAME.binpb`).
fn output_bytes(p: &Project, pattern: &str) -> u64 {
    let shown = p.ok(&["build", pattern, "--show-full-output"]);
    let size = |f: &Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
    shown
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|f| size(Path::new(f)) + size(&Path::new(f).with_extension("sets_used")))
        .sum()
}

/// The benchmark: `scripts/bench-tree` (a googleapis-sized tree: 415 packages, ~2,400 files).
#[test]
#[ignore]
fn benchmark() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (_up, p, tree) = project_with(&[15, 45, 90, 120, 90, 55], (3, 9));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "tree: {} packages, {} files, {} cores",
        tree.packages.len(),
        tree.files(),
        cores
    );

    // The floor: one protoc over every file (each parsed once), divided by the cores.
    let set = p.path().join("single.binpb");
    let protoc = find_protoc(&p);
    let include = protoc.parent().unwrap().parent().unwrap().join("include");
    let all: Vec<&String> = tree.packages.iter().flat_map(|p| &p.files).collect();
    let args_file = p.path().join("all-files.txt");
    std::fs::write(
        &args_file,
        all.iter().map(|f| format!("{f}\n")).collect::<String>(),
    )
    .unwrap();
    let mut singles = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(&protoc)
            .current_dir(p.path())
            .arg("--include_imports")
            .arg("--include_source_info")
            .arg(format!("--descriptor_set_out={}", set.display()))
            .arg("--proto_path=.")
            .arg(format!("--proto_path={}", include.display()))
            .arg(format!("@{}", args_file.display()))
            .output()
            .unwrap();
        singles.push(start.elapsed());
        assert!(out.status.success(), "{}", text(&out));
    }
    let single = median(singles);
    let floor = single.as_secs_f64() / cores as f64;
    let single_bytes = std::fs::metadata(&set).unwrap().len();

    // Cold, as on a new checkout; Buck2's own floor (the same graph, actions that do
    // nothing), likewise; and cold after `buck2 clean`.
    tree.write_noop_graph(&p);
    let aside = common::scratch();
    let mut colds = Vec::new();
    let mut noops = Vec::new();
    for run in 0..runs {
        new_checkout(&p, &aside.path().join(format!("tree{run}")));
        colds.push(timed(&p, &["build", "//tree/..."]));
        new_checkout(&p, &aside.path().join(format!("noop{run}")));
        noops.push(timed(&p, &["build", "//noop/..."]));
    }
    let cold = median(colds);
    let buck2_floor = median(noops);
    let mut cleans = Vec::new();
    for _ in 0..runs {
        p.ok(&["clean"]);
        p.ok(&["build", "toolchains//:protoc"]);
        cleans.push(timed(&p, &["build", "//tree/..."]));
    }
    let compiled = compiles(&p);
    let after_clean = median(cleans);
    let noop = median(
        (0..runs)
            .map(|_| timed(&p, &["build", "//tree/..."]))
            .collect(),
    );
    let out_bytes = output_bytes(&p, "//tree/...");

    let leaf = tree.leaf();
    let (leaf_time, leaf_ran) = edit_and_build(&p, &tree, leaf);
    let common = tree.most_imported();
    let (common_time, common_ran) = edit_and_build(&p, &tree, common);

    println!("medians of {runs} runs");
    println!(
        "floor: one protoc over all {} files {:.2} s / {cores} cores = {:.2} s",
        tree.files(),
        secs(single),
        floor
    );
    println!(
        "Buck2's own floor: the same graph, each action `touch`, cold: {:.2} s: {:.2}x the floor",
        secs(buck2_floor),
        secs(buck2_floor) / floor
    );
    println!(
        "cold `buck2 build //tree/...` (a new checkout): {:.2} s, {} protoc actions: {:.2}x the floor, {:.2}x Buck2's own",
        secs(cold),
        compiled,
        secs(cold) / floor,
        secs(cold) / secs(buck2_floor)
    );
    println!(
        "cold after `buck2 clean`: {:.2} s: {:.2}x the floor",
        secs(after_clean),
        secs(after_clean) / floor
    );
    println!("no-op build: {} ms", noop.as_millis());
    println!(
        "outputs (the libraries' descriptor sets and dep files): {:.1} MB; the single set: {:.1} MB: {:.2}x",
        out_bytes as f64 / 1e6,
        single_bytes as f64 / 1e6,
        out_bytes as f64 / single_bytes as f64
    );
    println!(
        "edit a leaf package: {leaf_ran} protoc action reran ({:.2} s); edit the most imported package: {common_ran} reran = 1 + the {} of its {} dependents whose files reach its files ({:.2} s)",
        secs(leaf_time),
        tree.reaching(common).len(),
        tree.dependents(common).len(),
        secs(common_time)
    );
}

/// A cold start as on a new checkout: the daemon stopped and `buck-out` moved to `aside`
/// (deleted just before a build, its thousands of inodes slow the file system's allocation
/// of new ones: a cost of `buck2 clean`, timed separately), then protoc fetched (untimed).
fn new_checkout(p: &Project, aside: &Path) {
    p.ok(&["kill"]);
    std::fs::rename(p.path().join("buck-out"), aside).unwrap();
    p.ok(&["build", "toolchains//:protoc"]);
}

/// The protoc the project's toolchain fetched.
fn find_protoc(p: &Project) -> std::path::PathBuf {
    let shown = p.ok(&["build", "toolchains//:protoc", "--show-full-output"]);
    let dir = shown.split_whitespace().nth(1).unwrap().to_string();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        if d.join("bin/protoc").is_file() {
            return d.join("bin/protoc");
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            stack.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    panic!("no bin/protoc under {shown}");
}
