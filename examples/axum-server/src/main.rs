//! `task-api-axum`: serves the task API natively.
//!
//! ```text
//! SPIN_VARIABLE_JWT_SECRET=… cargo run -p task-api-axum --release
//! ```
//!
//! `LISTEN` is the address (default `127.0.0.1:3000`); the service's settings are the
//! Spin variables' names as `spin up` reads them from the environment (see the README).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let run = async {
        let settings = task_api_axum::Settings::from_env()?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        eprintln!("task-api-axum listening on http://{listen}");
        task_api_axum::serve(listener, settings).await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("task-api-axum: {e}");
            ExitCode::FAILURE
        }
    }
}
