//! What the backend's and the sandbox's OpenAPI descriptions share (feature `openapi`): every operation that
//! does not describe its refusals itself gets the service's common error answer as `4XX`.

use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds `4XX` answering the component schema `schema` (JSON) to each operation of `doc` that has none.
pub fn with_refusals(mut doc: OpenApi, schema: &str, description: &str) -> OpenApi {
    let content = ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name(schema)))).build();
    let refusal = ResponseBuilder::new().description(description).content("application/json", content).build();
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            operation.responses.responses.entry("4XX".into()).or_insert_with(|| refusal.clone().into());
        }
    }
    doc
}
