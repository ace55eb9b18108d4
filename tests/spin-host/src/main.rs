//! `spin-test-host`: serves the project's component like `spin up` (HTTP trigger only).
//!
//! ```text
//! cargo run -p spin-test-host -- --listen 127.0.0.1:3000 --sqlite-dir .spin
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use spin_test_host::Host;

const USAGE: &str = "\
Usage: spin-test-host [OPTIONS]

Serves the component of a Spin manifest over HTTP, one instance per request.

Options:
  --listen ADDR          address to listen on (default 127.0.0.1:3000)
  --manifest PATH        the Spin manifest (default spin.toml)
  --wasm PATH            the component (default: the manifest's `source`, relative to it)
  --sqlite-dir DIR       where the default SQLite database and key-value store live
                         (default .spin)
  --variable NAME=VALUE  set an application variable (repeatable); wins over
                         SPIN_VARIABLE_<NAME> in the environment and in ./.env
  --max-instances N      instances that may run at once (default 64)
  --no-cache             do not keep compiled components in target/spin-test-host-cache
  --lenient-postgres     answer a PostgreSQL query that returns no rows with an empty row
                         set; by default (strict) it fails, because Spin 4.0.x hangs on
                         it (spinframework/spin#3671)
  -h, --help             print this help
";

struct Args {
    listen: String,
    manifest: PathBuf,
    wasm: Option<PathBuf>,
    sqlite_dir: PathBuf,
    variables: Vec<(String, String)>,
    max_instances: u32,
    cache: bool,
    strict_postgres: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: "127.0.0.1:3000".into(),
        manifest: "spin.toml".into(),
        wasm: None,
        sqlite_dir: ".spin".into(),
        variables: Vec::new(),
        max_instances: 64,
        cache: true,
        strict_postgres: true,
    };
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => parsed.listen = value("--listen")?,
            "--manifest" => parsed.manifest = value("--manifest")?.into(),
            "--wasm" => parsed.wasm = Some(value("--wasm")?.into()),
            "--sqlite-dir" => parsed.sqlite_dir = value("--sqlite-dir")?.into(),
            "--variable" => {
                let v = value("--variable")?;
                let (name, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--variable {v:?}: expected NAME=VALUE"))?;
                parsed.variables.push((name.to_owned(), val.to_owned()));
            }
            "--max-instances" => {
                let v = value("--max-instances")?;
                parsed.max_instances = v
                    .parse()
                    .map_err(|_| format!("--max-instances {v:?}: expected a number"))?;
            }
            "--no-cache" => parsed.cache = false,
            "--lenient-postgres" => parsed.strict_postgres = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> spin_test_host::Result<()> {
    let mut builder = Host::builder()
        .manifest(&args.manifest)
        .sqlite_dir(&args.sqlite_dir)
        .variables(args.variables)
        .dotenv(Some(".env".into()))
        .max_instances(args.max_instances)
        .strict_postgres(args.strict_postgres);
    if let Some(wasm) = args.wasm {
        builder = builder.wasm(wasm);
    }
    if !args.cache {
        builder = builder.compile_cache(None);
    }
    let host = builder.build()?;
    let (compile, cached) = host.compile_time();
    eprintln!(
        "{} {} in {:.2}s",
        if cached {
            "Loaded compiled"
        } else {
            "Compiled"
        },
        host.wasm().display(),
        compile.as_secs_f64()
    );
    let running = host.serve(args.listen.as_str()).await?;
    let app = host.app();
    println!("Serving http://{}", running.addr);
    println!("Available Routes:");
    for route in &app.routes {
        let wildcard = if route.ends_with("/...") {
            " (wildcard)"
        } else {
            ""
        };
        let path = route.strip_suffix("/...").unwrap_or(route);
        println!(
            "  {}: http://{}{path}{wildcard}",
            app.component_id, running.addr
        );
    }
    tokio::signal::ctrl_c().await?;
    eprintln!("Shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(list: &[&str]) -> Result<Option<super::Args>, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_with_separate_and_inline_values() {
        let a = args(&[
            "--listen",
            "0.0.0.0:1",
            "--sqlite-dir=/d",
            "--variable",
            "a=b=c",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.listen, "0.0.0.0:1");
        assert_eq!(a.sqlite_dir.to_str(), Some("/d"));
        assert_eq!(a.variables, [("a".to_owned(), "b=c".to_owned())]);
        assert_eq!(a.manifest.to_str(), Some("spin.toml"));
        assert!(a.strict_postgres, "strict zero-row mode is on by default");
        let lenient = args(&["--lenient-postgres"]).unwrap().unwrap();
        assert!(!lenient.strict_postgres);
    }

    #[test]
    fn errors_and_help() {
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--variable", "novalue"]).is_err());
        assert!(args(&["-h"]).unwrap().is_none());
    }
}
