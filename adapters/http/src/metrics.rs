//! `GET /metrics`: Prometheus text exposition.

use std::sync::Arc;

use poem::web::Data;
use poem::{Response, handler};
use tooltool_ports::ToolTool;

#[handler]
pub async fn metrics(service: Data<&Arc<dyn ToolTool>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(service.metrics_text().await)
}
