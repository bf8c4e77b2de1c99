//! Reaching the engine: `DOCKER_HOST` or the default socket, at the API version the engine
//! speaks (an engine older than the client library refuses the library's own version).

use bollard::Docker;

/// The engine could not be reached or refused a request.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "cannot reach the Docker engine at {endpoint}: {source}; is it running, and may this user use its socket? (set DOCKER_HOST to use another engine)"
    )]
    Unreachable {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// Connects to the engine and agrees on an API version with it.
pub async fn connect() -> Result<Docker, DockerError> {
    let endpoint = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
    let unreachable = |source| DockerError::Unreachable {
        endpoint: endpoint.clone(),
        source,
    };
    let docker = Docker::connect_with_defaults().map_err(unreachable)?;
    docker.negotiate_version().await.map_err(unreachable)
}
