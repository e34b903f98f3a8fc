//! OpenAPI pieces that handlers attach to their own operations.
use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// The 401 every protected route may answer, for the OpenAPI description.
pub struct ErrorResponses;

impl utoipa::IntoResponses for ErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        BTreeMap::from([(
            "401".to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Missing, invalid, expired or revoked token")
                    .content("application/json", body)
                    .build(),
            ),
        )])
    }
}
