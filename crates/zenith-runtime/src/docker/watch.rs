//! Watching a container: one task copies its output into the replica's log file, another
//! waits for its end, removes it and reports the `Exit`. Also exec and the engine's error
//! classification.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{InspectContainerOptions, LogsOptions, RemoveContainerOptions};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::exit_status;
use crate::{ExecOutput, Exit, ExitStatus, RuntimeError};

/// How much of an exec's output is kept.
const EXEC_OUTPUT_TAIL: usize = 4096;

/// Long enough that a follow or a wait never times out on its own.
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub(super) struct Tracked {
    pub container: String,
    /// Becomes `true` once the container has ended and its `Exit` was sent.
    pub gone: watch::Receiver<bool>,
    tasks: [AbortHandle; 2],
}

impl Tracked {
    pub fn is_gone(&self) -> bool {
        is_gone(&self.gone)
    }

    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub(super) fn is_gone(gone: &watch::Receiver<bool>) -> bool {
    *gone.borrow()
}

pub(super) async fn wait_gone(mut gone: watch::Receiver<bool>) {
    // An error means the watcher was dropped without reporting: nothing more will come.
    let _ = gone.wait_for(|g| *g).await;
}

/// Starts watching `container`, which runs replica `replica`. `since` (Unix seconds) skips
/// output already copied by an earlier daemon.
pub(super) fn watch(
    docker: &Docker,
    replica: &str,
    container: &str,
    log_path: &Path,
    since: Option<i64>,
    exits: mpsc::UnboundedSender<Exit>,
) -> Tracked {
    let (gone_tx, gone) = watch::channel(false);
    let long = docker.clone().with_timeout(FOREVER);
    let logs = tokio::spawn(copy_logs(
        long.clone(),
        container.to_string(),
        log_path.to_path_buf(),
        since,
    ));
    let logs_handle = logs.abort_handle();
    let waiter = tokio::spawn({
        let (replica, container) = (replica.to_string(), container.to_string());
        async move {
            let status = wait_exit(&long, &container).await;
            // Let the output reach the log before the container (and its output) goes.
            let _ = tokio::time::timeout(Duration::from_secs(2), logs).await;
            remove(&long, &container).await;
            let _ = gone_tx.send(true);
            tracing::info!(replica = %replica, %status, "container ended");
            let _ = exits.send(Exit { id: replica, status });
        }
    });
    Tracked {
        container: container.to_string(),
        gone,
        tasks: [logs_handle, waiter.abort_handle()],
    }
}

/// Waits for the container to end and returns its status, riding out lost connections to
/// the engine (a restarted engine, a timed-out request).
async fn wait_exit(docker: &Docker, container: &str) -> ExitStatus {
    loop {
        let mut wait = docker.wait_container(container, None);
        match wait.next().await {
            Some(Ok(r)) => return exit_status(r.status_code),
            Some(Err(EngineError::DockerContainerWaitError { code, .. })) => return exit_status(code),
            Some(Err(e)) if is_not_found(&e) => return ExitStatus::Unknown,
            Some(Err(e)) => tracing::debug!(container, error = %e, "waiting for the container failed; checking on it"),
            None => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        match docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                if state.running != Some(true) {
                    return state.exit_code.map_or(ExitStatus::Unknown, exit_status);
                }
            }
            Err(e) if is_not_found(&e) => return ExitStatus::Unknown,
            Err(e) => tracing::warn!(container, error = %e, "cannot reach the engine to watch a container"),
        }
    }
}

async fn copy_logs(docker: Docker, container: String, path: std::path::PathBuf, since: Option<i64>) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(container, path = %path.display(), error = %e, "cannot open the replica's log");
            return;
        }
    };
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since: since.and_then(|s| i32::try_from(s).ok()).unwrap_or(0),
        ..Default::default()
    };
    let mut stream = docker.logs(&container, Some(options));
    while let Some(Ok(chunk)) = stream.next().await {
        if file.write_all(chunk.as_ref()).await.is_err() {
            return;
        }
    }
}

/// Removes a container (and its anonymous volumes); a container already gone is fine.
pub(super) async fn remove(docker: &Docker, container: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(container, Some(options)).await {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => {}
        // Removal already under way (the engine answers 409).
        Err(EngineError::DockerResponseServerError { status_code: 409, .. }) => {}
        Err(e) => tracing::warn!(container, error = %e, "cannot remove the container"),
    }
}

/// Runs `command` in the container with a timeout; exit status and the tail of its output.
pub(super) async fn exec(
    docker: &Docker,
    replica: &str,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ExecOutput, RuntimeError> {
    let failed = |e: EngineError| RuntimeError::Exec {
        id: replica.to_string(),
        command: command.join(" "),
        source: std::io::Error::other(engine_message(&e)),
    };
    let run = async {
        let options = CreateExecOptions {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker.create_exec(container, options).await.map_err(failed)?;
        let mut output = Vec::new();
        if let StartExecResults::Attached { output: mut stream, .. } =
            docker.start_exec(&exec.id, None).await.map_err(failed)?
        {
            while let Some(Ok(chunk)) = stream.next().await {
                output.extend_from_slice(chunk.as_ref());
                if output.len() > 2 * EXEC_OUTPUT_TAIL {
                    output.drain(..output.len() - EXEC_OUTPUT_TAIL);
                }
            }
        }
        let inspect = docker.inspect_exec(&exec.id).await.map_err(failed)?;
        let status = inspect.exit_code.map_or(ExitStatus::Unknown, exit_status);
        let start = output.len().saturating_sub(EXEC_OUTPUT_TAIL);
        Ok(ExecOutput {
            status,
            output: String::from_utf8_lossy(&output[start..]).into_owned(),
        })
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        // The engine has no way to kill an exec; it ends with the container at the latest.
        Err(_) => Err(RuntimeError::ExecTimeout {
            id: replica.to_string(),
            command: command.join(" "),
            timeout,
            output: String::new(),
        }),
    }
}

/// The engine answered 404: no such container, image, volume or exec.
pub fn is_not_found(e: &EngineError) -> bool {
    matches!(e, EngineError::DockerResponseServerError { status_code: 404, .. })
}

pub(super) fn is_not_modified(e: &EngineError) -> bool {
    matches!(e, EngineError::DockerResponseServerError { status_code: 304, .. })
}

/// The engine's own words for a refused request, without the transport's wrapping.
pub(super) fn engine_message(e: &EngineError) -> String {
    match e {
        EngineError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
