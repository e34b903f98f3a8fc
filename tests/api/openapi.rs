//! /openapi.json describes exactly the routes the app serves (docs/API.md's),
//! with the bearer scheme, error responses and closed request bodies.
use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use taskgate::domain::task::parse_description;
use taskgate::domain::{FullName, Role, TaskTitle};

use crate::helpers::spawn_app;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

/// Follows a `$ref` to `#/components/schemas/...`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// The contract's routes (docs/API.md) are the document's: one list, the
/// contract, and no copy of it here.
#[tokio::test]
async fn the_document_lists_exactly_the_routes_of_the_contract() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let contract = routes_in_api_md();
    assert!(contract.len() > 40, "{contract:?}");
    assert_eq!(documented(&doc), contract);
}

#[tokio::test]
async fn the_server_serves_exactly_the_documented_methods_of_each_path() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let mut allowed: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        allowed.sort();
        let concrete = path.replace("{id}", "1");
        // Any method the document does not list for this path must be refused
        // with 405, whose Allow header names exactly the documented ones.
        for method in METHODS.iter().filter(|m| !allowed.contains(&m.to_string())) {
            let resp = app
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete)
                .bearer_auth(&admin.access)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let mut allow: Vec<String> = resp.headers()["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_owned)
                .collect();
            allow.sort();
            assert_eq!(allow, allowed, "Allow of {path}");
        }
    }
}

#[tokio::test]
async fn operations_document_their_security_errors_and_closed_bodies() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert_eq!(
                    op["security"][0]["bearer"],
                    Value::Array(vec![]),
                    "{what} names the bearer scheme"
                );
                assert!(responses.contains_key("401"), "{what} documents 401");
            }
            if path.starts_with("/admin") || path.starts_with("/reports") {
                assert!(responses.contains_key("403"), "{what} documents 403");
            }
            if let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                let schema = resolve(&doc, &Value::Object(schema.clone())).clone();
                let schema = if schema["oneOf"].is_array() {
                    // Optional bodies (`/logout`) are `null` or the object.
                    resolve(
                        &doc,
                        schema["oneOf"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|s| s["type"] != "null")
                            .unwrap(),
                    )
                    .clone()
                } else {
                    schema
                };
                assert_eq!(
                    schema["additionalProperties"], false,
                    "{what}: unknown fields are refused"
                );
                assert!(
                    responses.contains_key("422") || path == "/logout",
                    "{what} documents 422"
                );
            }
        }
    }
}

/// The document says which operations need no token; the server agrees:
/// each answers an anonymous caller without 401 (the role matrix in
/// access.rs checks the others refuse one).
#[tokio::test]
async fn operations_without_security_answer_anonymous_callers() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut open = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app.request(method.clone(), path);
            if method == Method::POST {
                req = req.json(&serde_json::json!({}));
            }
            let resp = req.send().await.unwrap();
            assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            open.push(format!("{method} {path}"));
        }
    }
    for must in [
        "POST /token",
        "POST /users/signup",
        "GET /healthz",
        "GET /console/",
    ] {
        assert!(open.iter().any(|o| o == must), "{must}: {open:?}");
    }
}

/// Every `METHOD /path` that docs/API.md names in backquotes, with query strings
/// dropped and `GET /users/me, GET /me` style pairs split.
fn routes_in_api_md() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(crate::helpers::project_dir().join("docs/API.md"))
        .expect("docs/API.md exists");
    let mut routes = BTreeSet::new();
    for quoted in text.split('`').skip(1).step_by(2) {
        let Some((method, path)) = quoted.split_once(' ') else {
            continue;
        };
        if METHODS.contains(&method) && path.starts_with('/') {
            let path = path.split('?').next().unwrap().to_owned();
            routes.insert((method.to_owned(), path));
        }
    }
    routes
}

#[tokio::test]
async fn every_route_docs_api_md_names_is_served() {
    let in_docs = routes_in_api_md();
    assert!(in_docs.len() > 40, "{in_docs:?}");
    // Each is answered by a route, not the 404 of an unknown path.
    let app = spawn_app().await;
    for (method, path) in &in_docs {
        let path = path.replace("{id}", "1");
        let resp = app
            .request(Method::from_bytes(method.as_bytes()).unwrap(), &path)
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            let body: Value = resp.json().await.unwrap();
            assert_ne!(body["detail"], "Not found", "{method} {path} is not served");
        }
    }
}

/// Every string in a document a client validates against: `schema`, with its
/// pattern read as ECMA-262 reads it (OpenAPI's dialect, what zod, ajv and the
/// fuzzer use), in both the plain and the `u` mode.
struct StringRule<'a> {
    schema: &'a Value,
    patterns: Vec<regress::Regex>,
}

impl<'a> StringRule<'a> {
    fn new(schema: &'a Value, at: &str) -> StringRule<'a> {
        let patterns = schema["pattern"].as_str().map_or_else(Vec::new, |p| {
            ["", "u"]
                .iter()
                .map(|flags| {
                    regress::Regex::with_flags(p, *flags)
                        .unwrap_or_else(|e| panic!("{at}: pattern /{p}/{flags}: {e}"))
                })
                .collect()
        });
        StringRule { schema, patterns }
    }

    fn allows(&self, text: &str) -> bool {
        let n = text.chars().count() as u64;
        let length = |key: &str| self.schema[key].as_u64();
        let matches: Vec<bool> = self
            .patterns
            .iter()
            .map(|p| p.find(text).is_some())
            .collect();
        assert!(
            matches.windows(2).all(|w| w[0] == w[1]),
            "modes differ on {text:?}"
        );
        matches.first().copied().unwrap_or(true)
            && length("minLength").is_none_or(|min| n >= min)
            && length("maxLength").is_none_or(|max| n <= max)
    }
}

/// Each `title` and `full_name` schema states its length as `minLength` and
/// `maxLength` (the task body's title `maxLength: 200`), the trimming rule in
/// words, and a short pattern; and read as a client reads it, it agrees with
/// `TaskTitle::parse` or `FullName::parse` on every one-character text of the
/// Basic Multilingual Plane (all of Unicode's whitespace is there) and on
/// texts around 200 characters. The one difference is padding: `maxLength`
/// counts what is sent, so the document refuses a padded text the server
/// trims and takes; it never allows one the server refuses. And over HTTP a
/// title of U+0085 alone (whitespace to Rust, not to ECMA-262's `\s`) or of
/// U+FEFF alone (the other way round) is refused as a refused character, not
/// as blank.
#[tokio::test]
async fn trimmed_text_schemas_state_their_lengths_and_agree_with_the_server() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    // Over HTTP first: the checks below take seconds of CPU, long enough for
    // an idle keep-alive connection to be closed under the client.
    let user = app.signup_and_login(Role::User).await;
    let resp = app
        .create_task(&user, serde_json::json!({"title": "\u{85}"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["fields"]["title"],
        "title must not contain control or bidirectional formatting characters (U+0085)"
    );
    let resp = app
        .create_task(&user, serde_json::json!({"title": "\u{FEFF}"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let title = |t: &str| TaskTitle::parse(t).is_ok();
    let full_name = |t: &str| FullName::parse(Some(t.to_owned())).is_ok();
    type Rule<'a> = &'a dyn Fn(&str) -> bool;
    let fields: [(&str, &str, Option<u64>, Rule); 6] = [
        ("TaskBody", "title", Some(1), &title),
        ("TaskPatch", "title", Some(1), &title),
        ("SignupBody", "full_name", None, &full_name),
        ("UpdateMeBody", "full_name", None, &full_name),
        ("CreateUserBody", "full_name", None, &full_name),
        ("UpdateUserBody", "full_name", None, &full_name),
    ];
    let long = "é".repeat(200);
    let samples = [
        long.clone(),
        format!("{long}x"),
        format!(" \u{3000}{long}\u{85}\n"),
        format!("\t{long}x "),
        format!(" {long}"),
        "a b".to_owned(),
        " a\u{2028}".to_owned(),
        "a\0b".to_owned(),
        " \u{2028}\u{2029} ".to_owned(),
        String::new(),
    ];
    for (body, field, min_length, server_takes) in fields {
        let at = format!("{body}.{field}");
        let schema = &doc["components"]["schemas"][body]["properties"][field];
        assert_eq!(schema["maxLength"], 200, "{at}");
        assert_eq!(schema["minLength"].as_u64(), min_length, "{at}");
        let said = schema["description"].as_str().unwrap_or_default();
        assert!(
            said.contains("trimmed") && said.contains("200"),
            "{at}: {said}"
        );
        let rule = StringRule::new(schema, &at);
        assert!(!rule.patterns.is_empty(), "{at} has a pattern");
        let singles = (0..=0xFFFF_u32)
            .filter_map(char::from_u32)
            .map(String::from);
        for text in singles.chain(samples.iter().cloned()) {
            let (allowed, taken) = (rule.allows(&text), server_takes(&text));
            if text.trim() == text || !taken {
                assert_eq!(allowed, taken, "{at} of {text:?}");
            } else {
                // Padded, and taken once trimmed: allowed while it fits as sent.
                assert_eq!(allowed, text.chars().count() <= 200, "{at} of {text:?}");
            }
        }
    }
    // A description is kept as sent: the document and the server agree on
    // every text, line breaks and tabs taken.
    for body in ["TaskBody", "TaskPatch"] {
        let at = format!("{body}.description");
        let rule = StringRule::new(
            &doc["components"]["schemas"][body]["properties"]["description"],
            &at,
        );
        assert!(!rule.patterns.is_empty(), "{at} has a pattern");
        let singles = (0..=0xFFFF_u32)
            .filter_map(char::from_u32)
            .map(String::from);
        for text in singles.chain(samples.iter().cloned()) {
            let taken = parse_description(Some(text.clone())).is_ok();
            assert_eq!(rule.allows(&text), taken, "{at} of {text:?}");
        }
    }
}

/// Answers state the same lengths as requests: a task's title 1 to 200
/// characters, its description at most 10,000, a user's name 1 to 200 (blank
/// is stored as none), an email at most 254.
#[tokio::test]
async fn responses_state_the_lengths_requests_are_held_to() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field, min, max) in [
        ("Task", "title", Some(1), 200),
        ("Task", "description", None, 10_000),
        ("User", "full_name", Some(1), 200),
        ("User", "email", None, 254),
        ("TaskBody", "description", None, 10_000),
        ("SignupBody", "email", None, 254),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(property["maxLength"], max, "{schema}.{field}");
        assert_eq!(property["minLength"].as_u64(), min, "{schema}.{field}");
    }
}

/// Patterns stay short enough to read and to compile into any client: the
/// longest is 100 characters, and none carries a line or paragraph separator
/// (raw or escaped), which a generator writing a regex literal breaks on.
#[tokio::test]
async fn patterns_are_short_and_safe_in_a_regex_literal() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let found = strings_under(&doc, "pattern");
    assert!(!found.is_empty());
    for p in found {
        assert!(p.chars().count() <= 100, "{} characters: {p}", p.len());
        for bad in ["\u{2028}", "\u{2029}", r"\u2028", r"\u2029"] {
            assert!(!p.contains(bad), "{p} holds {bad:?}");
        }
    }
}

/// Every string value of `key`, at any depth of `value`.
fn strings_under<'a>(value: &'a Value, key: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(s)) = map.get(key) {
                    found.push(s.as_str());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

/// Every `$ref` in the document names a schema the document holds.
#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let found = strings_under(&doc, "$ref");
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
}

/// Client generators name methods after operation ids and drop or rename
/// duplicates: every operation has its own id, named for what a client calls.
#[tokio::test]
async fn operation_ids_are_unique_and_name_what_a_client_calls() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method.to_lowercase()) else {
                continue;
            };
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id:?} of {method} {path} is also {other}'s");
            }
            for field in ["summary", "description"] {
                let text = op[field].as_str().unwrap_or_default();
                assert!(
                    !text.contains("::"),
                    "{method} {path}: a Rust path in its {field}: {text:?}"
                );
            }
        }
    }
    assert_eq!(ids["list_tasks"], "GET /tasks");
    assert_eq!(ids["admin_list_tasks"], "GET /admin/tasks");
    assert_eq!(ids["get_openapi"], "GET /openapi.json");
}

/// Generated clients need a base: the document names the server it is served from.
#[tokio::test]
async fn the_document_names_its_server() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let servers = doc["servers"].as_array().expect("a servers list");
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["url"], "/");
}

/// One request type for the password grant, the form: generators that meet
/// two under a oneOf produce login code that does not import. Multipart is
/// still accepted (tests/api/login.rs), as FastAPI's form is.
#[tokio::test]
async fn the_token_routes_document_the_form_alone() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/token", "/login"] {
        let content = doc["paths"][path]["post"]["requestBody"]["content"]
            .as_object()
            .unwrap();
        let types: Vec<_> = content.keys().collect();
        assert_eq!(types, ["application/x-www-form-urlencoded"], "{path}");
    }
}

/// The codes of docs/API.md's error table (`| 404 | `not_found` | ...`).
fn error_codes_in_api_md() -> BTreeSet<String> {
    let text = std::fs::read_to_string(crate::helpers::project_dir().join("docs/API.md"))
        .expect("docs/API.md exists");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status_cell = cells.get(1)?;
            let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            (status_cell.len() == 3 && status_cell.parse::<u16>().is_ok()).then(|| code.to_owned())
        })
        .collect()
}

/// A client can match on `error`: the document states its codes as an enum,
/// exactly the codes docs/API.md's table lists.
#[tokio::test]
async fn the_error_code_is_an_enum_of_the_documented_codes() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let body = &doc["components"]["schemas"]["ErrorBody"];
    let error = resolve(&doc, &body["properties"]["error"]);
    let codes: BTreeSet<String> = error["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("error is not an enum: {error}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, error_codes_in_api_md());
    assert!(codes.contains("rate_limited") && codes.contains("unavailable"));
}

/// `grant_type` is typed: one value per grant, as an enum.
#[tokio::test]
async fn grant_types_are_enums() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (form, value) in [
        ("PasswordGrantForm", "password"),
        ("RefreshGrantForm", "refresh_token"),
    ] {
        let schema = &doc["components"]["schemas"][form]["properties"]["grant_type"];
        let schema = resolve(&doc, schema);
        // An optional field may wrap its reference in a oneOf with null.
        let schema = schema["oneOf"]
            .as_array()
            .and_then(|alts| alts.iter().find(|a| a["type"] != "null"))
            .map_or(schema, |a| resolve(&doc, a));
        assert_eq!(
            schema["enum"],
            serde_json::json!([value]),
            "{form}: {schema}"
        );
    }
}

/// The tokens are also described as OAuth2's password flow (`tokenUrl`
/// `/token`), offered beside the bearer scheme wherever a token is required.
#[tokio::test]
async fn protected_operations_offer_the_oauth2_password_flow_beside_bearer() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let scheme = &doc["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    assert_eq!(scheme["flows"]["password"]["tokenUrl"], "/token");
    let mut protected = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(security) = item
                .get(method.to_lowercase())
                .and_then(|op| op["security"].as_array())
            else {
                continue;
            };
            let names: Vec<&str> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            assert_eq!(names, ["bearer", "oauth2"], "{method} {path}");
            protected += 1;
        }
    }
    assert!(protected > 20, "{protected} protected operations");
}

/// The headers a client reads are in the document, not only in prose:
/// `X-Total-Count` on every list, `Retry-After` on every 429 and 503,
/// `Location` on what `POST /tasks` and `POST /admin/users` create.
#[tokio::test]
async fn response_headers_are_declared_where_they_are_sent() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut lists = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method.to_lowercase()) else {
                continue;
            };
            for (status, response) in op["responses"].as_object().unwrap() {
                let headers = &response["headers"];
                let body = &response["content"]["application/json"]["schema"];
                if status == "200" && body["type"] == "array" {
                    assert_eq!(
                        headers["X-Total-Count"]["schema"]["type"], "integer",
                        "{method} {path}"
                    );
                    lists.push(format!("{method} {path}"));
                }
                if status == "429" || status == "503" {
                    assert!(
                        headers.get("Retry-After").is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(lists.contains(&"GET /tasks".to_owned()), "{lists:?}");
    assert!(
        lists.contains(&"GET /users/me/sessions".to_owned()),
        "{lists:?}"
    );
    for path in ["/tasks", "/admin/users"] {
        let created = &doc["paths"][path]["post"]["responses"]["201"];
        assert_eq!(
            created["headers"]["Location"]["schema"]["type"], "string",
            "{path}"
        );
    }
}

/// Generated clients name their classes after the document's schemas: those
/// are the contract's names (docs/API.md's User, Task, Session, TokenPair),
/// not our Rust types'.
#[tokio::test]
async fn schemas_carry_the_contracts_names() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "User",
        "Task",
        "Session",
        "TokenPair",
        "AuditEvent",
        "Dashboard",
    ] {
        assert!(schemas.contains_key(name), "no {name} schema");
    }
    for (name, schema) in schemas {
        assert!(!name.ends_with("View"), "{name}");
        let said = schema["description"].as_str().unwrap_or_default();
        assert!(
            !said.contains("::") && !said.contains("FormFields"),
            "{name}: {said}"
        );
    }
}
