//! The daemon's runtime: one value behind the `Runtime` trait that hands each replica to the
//! driver it belongs to, processes to [`ProcessRuntime`] and containers to [`DockerRuntime`].

use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    BoxFuture, DockerRuntime, ExecOutput, Exit, ProcessRuntime, ReplicaRecord, ReplicaSpec, Runtime, RuntimeError,
};

#[derive(Default)]
pub struct Runtimes {
    pub process: ProcessRuntime,
    pub docker: DockerRuntime,
}

impl Runtimes {
    pub fn new() -> Self {
        Self::default()
    }

    fn for_spec(&self, spec: &ReplicaSpec) -> &dyn Runtime {
        if spec.container.is_some() {
            &self.docker
        } else {
            &self.process
        }
    }

    fn for_record(&self, record: &ReplicaRecord) -> &dyn Runtime {
        if record.container.is_some() {
            &self.docker
        } else {
            &self.process
        }
    }
}

impl Runtime for Runtimes {
    fn name(&self) -> &'static str {
        "process+docker"
    }

    fn start<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<ReplicaRecord, RuntimeError>> {
        self.for_spec(spec).start(spec, exits)
    }

    fn adopt<'a>(
        &'a self,
        record: &'a ReplicaRecord,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> BoxFuture<'a, Result<bool, RuntimeError>> {
        self.for_record(record).adopt(record, exits)
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        if self.docker.owns(id) {
            self.docker.stop(id, grace)
        } else {
            self.process.stop(id, grace)
        }
    }

    fn exec<'a>(
        &'a self,
        spec: &'a ReplicaSpec,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        self.for_spec(spec).exec(spec, command, timeout)
    }

    fn cpu_time(&self, record: &ReplicaRecord) -> Option<Duration> {
        self.for_record(record).cpu_time(record)
    }

    fn reported_health<'a>(&'a self, spec: &'a ReplicaSpec) -> BoxFuture<'a, Result<(), String>> {
        self.for_spec(spec).reported_health(spec)
    }
}
