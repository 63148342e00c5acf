//! Serves each connection with hyper directly, instead of `axum::serve`, so that a `Drop` fault can
//! close a connection without writing any response: the client then sees a transport error (as
//! after a network failure), never a status.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

/// Put in every request's extensions: lets a handler (the gate) abort its own connection.
#[derive(Clone, Default)]
pub(crate) struct ConnControl(Arc<Notify>);

impl ConnControl {
    pub fn abort(&self) {
        // notify_one stores a permit, so the abort is seen even if nobody is waiting yet.
        self.0.notify_one();
    }

    async fn aborted(&self) {
        self.0.notified().await;
    }
}

pub(crate) async fn serve(listener: TcpListener, router: Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let control = ConnControl::default();
            let for_requests = control.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(for_requests.clone());
                router.clone().oneshot(req)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future drops the socket: closed without a response.
            tokio::select! {
                _ = connection => {}
                _ = control.aborted() => {}
            }
        });
    }
}
