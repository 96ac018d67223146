//! `kc-healthcheck`, the image's health check, against real servers: a gRPC health service
//! (the four services) and an HTTP server (the gateway's /healthz).

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

/// kc-healthcheck's exit code with `args`.
async fn healthcheck(args: &[&str]) -> i32 {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kc-healthcheck"))
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .expect("kc-healthcheck runs")
        .code()
        .expect("an exit code")
}

/// An HTTP/1.1 server answering `/ok` 200, `/down` 503 and anything else 404.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let status = match line.split_whitespace().nth(1) {
                    Some("/ok") => "200 OK",
                    Some("/down") => "503 Service Unavailable",
                    _ => "404 Not Found",
                };
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_http_url_passes_only_on_2xx() {
    let addr = http_server().await;
    assert_eq!(healthcheck(&[&format!("http://{addr}/ok")]).await, 0);
    assert_eq!(healthcheck(&[&format!("http://{addr}/down")]).await, 1);
    assert_eq!(healthcheck(&[&format!("http://{addr}/missing")]).await, 1);
    let vacant = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(healthcheck(&[&format!("http://{vacant}/ok")]).await, 1);
    assert_eq!(healthcheck(&["http://not a url"]).await, 1);
    assert_eq!(healthcheck(&[]).await, 2);
}

#[tokio::test]
async fn a_grpc_address_passes_only_when_serving() {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("kc.Up", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("kc.Draining", ServingStatus::NotServing)
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    assert_eq!(healthcheck(&[&addr, "kc.Up"]).await, 0);
    assert_eq!(healthcheck(&[&addr]).await, 0);
    assert_eq!(healthcheck(&[&addr, "kc.Draining"]).await, 1);
    assert_eq!(healthcheck(&[&addr, "kc.Unknown"]).await, 1);
    drop(reporter);
}
