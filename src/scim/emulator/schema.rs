//! What the emulator serves, described as RFC 7643 schemas: the attribute tables PATCH, PUT
//! and POST check bodies against, and the `/Schemas`, `/ResourceTypes` and
//! `/ServiceProviderConfig` documents built from them.

use serde_json::{json, Map, Value};

use super::Quirks;
use crate::scim::wire;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Reference,
    Complex,

    Integer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

/// One attribute (RFC 7643 section 7).
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Type,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub canonical: &'static [&'static str],
    pub sub: &'static [Attr],
}

const fn attr(name: &'static str, kind: Type) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        canonical: &[],
        sub: &[],
    }
}

impl Attr {
    const fn required(mut self) -> Attr {
        self.required = true;
        self
    }
    const fn multi(mut self) -> Attr {
        self.multi = true;
        self
    }
    const fn exact(mut self) -> Attr {
        self.case_exact = true;
        self
    }
    const fn unique(mut self) -> Attr {
        self.unique = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Attr {
        self.mutability = m;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Attr {
        self.canonical = values;
        self
    }
    const fn sub(mut self, sub: &'static [Attr]) -> Attr {
        self.sub = sub;
        self
    }

    /// The sub-attribute named `name`, whatever its case (attribute names are
    /// case-insensitive, RFC 7643 section 2.1).
    pub fn find_sub(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

use Mutability::{Immutable, ReadOnly};
use Type::{Boolean, Complex, Integer, Reference, String as Str};

/// Attributes every resource has (RFC 7643 section 3.1). `id` and `meta` are the server's.
pub static COMMON: &[Attr] = &[
    attr("id", Str).exact().mutability(ReadOnly),
    attr("externalId", Str).exact(),
];

pub static USER: &[Attr] = &[
    attr("userName", Str).required().unique(),
    attr("name", Complex).sub(&[
        attr("formatted", Str),
        attr("familyName", Str),
        attr("givenName", Str),
    ]),
    attr("displayName", Str),
    attr("active", Boolean),
    attr("emails", Complex).multi().sub(&[
        attr("value", Str),
        attr("type", Str).canonical(&["work", "home", "other"]),
        attr("primary", Boolean),
    ]),
];

pub static GROUP: &[Attr] = &[
    attr("displayName", Str).required(),
    attr("members", Complex).multi().sub(&[
        attr("value", Str).exact().mutability(Immutable),
        attr("$ref", Reference).exact().mutability(Immutable),
        attr("type", Str)
            .canonical(&["User", "Group"])
            .mutability(Immutable),
        attr("display", Str).mutability(ReadOnly),
    ]),
];

/// The schemas that describe the discovery documents themselves (RFC 7643 sections 5 to 7),
/// reduced to their top-level attributes.
static SERVICE_PROVIDER_CONFIG: &[Attr] = &[
    attr("documentationUri", Reference).mutability(ReadOnly),
    attr("patch", Complex)
        .required()
        .mutability(ReadOnly)
        .sub(&[attr("supported", Boolean).required().mutability(ReadOnly)]),
    attr("bulk", Complex).required().mutability(ReadOnly).sub(&[
        attr("supported", Boolean).required().mutability(ReadOnly),
        attr("maxOperations", Integer)
            .required()
            .mutability(ReadOnly),
        attr("maxPayloadSize", Integer)
            .required()
            .mutability(ReadOnly),
    ]),
    attr("filter", Complex)
        .required()
        .mutability(ReadOnly)
        .sub(&[
            attr("supported", Boolean).required().mutability(ReadOnly),
            attr("maxResults", Integer).required().mutability(ReadOnly),
        ]),
    attr("changePassword", Complex)
        .required()
        .mutability(ReadOnly)
        .sub(&[attr("supported", Boolean).required().mutability(ReadOnly)]),
    attr("sort", Complex)
        .required()
        .mutability(ReadOnly)
        .sub(&[attr("supported", Boolean).required().mutability(ReadOnly)]),
    attr("etag", Complex)
        .required()
        .mutability(ReadOnly)
        .sub(&[attr("supported", Boolean).required().mutability(ReadOnly)]),
    attr("authenticationSchemes", Complex)
        .multi()
        .required()
        .mutability(ReadOnly)
        .sub(&[
            attr("type", Str).required().mutability(ReadOnly),
            attr("name", Str).required().mutability(ReadOnly),
            attr("description", Str).required().mutability(ReadOnly),
        ]),
];

static RESOURCE_TYPE: &[Attr] = &[
    attr("id", Str).mutability(ReadOnly),
    attr("name", Str).required().mutability(ReadOnly),
    attr("description", Str).mutability(ReadOnly),
    attr("endpoint", Reference).required().mutability(ReadOnly),
    attr("schema", Reference)
        .required()
        .exact()
        .mutability(ReadOnly),
    attr("schemaExtensions", Complex)
        .multi()
        .mutability(ReadOnly)
        .sub(&[
            attr("schema", Reference)
                .required()
                .exact()
                .mutability(ReadOnly),
            attr("required", Boolean).required().mutability(ReadOnly),
        ]),
];

static SCHEMA: &[Attr] = &[
    attr("id", Str).required().mutability(ReadOnly),
    attr("name", Str).mutability(ReadOnly),
    attr("description", Str).mutability(ReadOnly),
    attr("attributes", Complex)
        .multi()
        .required()
        .mutability(ReadOnly)
        .sub(&[
            attr("name", Str).required().exact().mutability(ReadOnly),
            attr("type", Str).required().mutability(ReadOnly),
            attr("multiValued", Boolean).required().mutability(ReadOnly),
            attr("description", Str).mutability(ReadOnly),
            attr("required", Boolean).required().mutability(ReadOnly),
            attr("caseExact", Boolean).mutability(ReadOnly),
            attr("mutability", Str).mutability(ReadOnly),
            attr("returned", Str).mutability(ReadOnly),
            attr("uniqueness", Str).mutability(ReadOnly),
            attr("canonicalValues", Str).multi().mutability(ReadOnly),
            attr("referenceTypes", Str).multi().mutability(ReadOnly),
            attr("subAttributes", Complex).multi().mutability(ReadOnly),
        ]),
];

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The resource types the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

impl Kind {
    pub fn schema(self) -> &'static str {
        match self {
            Kind::Users => wire::USER_SCHEMA,
            Kind::Groups => wire::GROUP_SCHEMA,
        }
    }

    pub fn attrs(self) -> &'static [Attr] {
        match self {
            Kind::Users => USER,
            Kind::Groups => GROUP,
        }
    }

    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::Users => "User",
            Kind::Groups => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::Users => "Users",
            Kind::Groups => "Groups",
        }
    }

    /// The attribute a name denotes: a core or common attribute, by name in any case, with
    /// or without the schema's URN before it.
    pub fn find(self, name: &str) -> Option<&'static Attr> {
        let name = strip_urn(self, name);
        self.attrs()
            .iter()
            .chain(COMMON)
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// `urn:ietf:params:scim:schemas:core:2.0:User:userName` → `userName`.
pub fn strip_urn(kind: Kind, name: &str) -> &str {
    let urn = kind.schema();
    match name.get(..urn.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(urn) => {
            name[urn.len()..].strip_prefix(':').unwrap_or(name)
        }
        _ => name,
    }
}

/// Whether `userName` is compared case-sensitively, as this tenant says it behaves (with
/// `schemas_lie_case_exact`, not as it does).
fn user_name_exact(quirks: &Quirks, a: &Attr) -> bool {
    let user_name = a.name == "userName";
    if user_name && quirks.schemas_lie_case_exact {
        return false;
    }
    a.case_exact || (user_name && quirks.case_sensitive_user_name)
}

fn attr_json(a: &Attr, quirks: &Quirks) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(a.name));
    let kind = match a.kind {
        Str => "string",
        Boolean => "boolean",
        Reference => "reference",
        Complex => "complex",

        Integer => "integer",
    };
    o.insert("type".into(), json!(kind));
    o.insert("multiValued".into(), json!(a.multi));
    o.insert("description".into(), json!(""));
    o.insert("required".into(), json!(a.required));
    if a.kind != Complex && a.kind != Boolean && a.kind != Integer {
        o.insert("caseExact".into(), json!(user_name_exact(quirks, a)));
    }
    let mutability = match a.mutability {
        ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Immutable => "immutable",
    };
    o.insert("mutability".into(), json!(mutability));
    o.insert("returned".into(), json!("default"));
    if a.kind != Complex && a.kind != Boolean {
        let uniqueness = if a.unique { "server" } else { "none" };
        o.insert("uniqueness".into(), json!(uniqueness));
    }
    if !a.canonical.is_empty() {
        o.insert("canonicalValues".into(), json!(a.canonical));
    }
    if a.kind == Reference {
        let types = if a.name == "$ref" {
            json!(["User", "Group"])
        } else {
            json!(["external"])
        };
        o.insert("referenceTypes".into(), types);
    }
    if a.kind == Complex {
        let sub: Vec<Value> = a.sub.iter().map(|s| attr_json(s, quirks)).collect();
        o.insert("subAttributes".into(), Value::Array(sub));
    }
    Value::Object(o)
}

fn schema_json(base: &str, id: &str, name: &str, attrs: &[Attr], quirks: &Quirks) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": name,
        "attributes": attrs.iter().map(|a| attr_json(a, quirks)).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

/// Every schema `/Schemas` publishes, by id.
pub fn schemas(base: &str, quirks: &Quirks) -> Vec<Value> {
    vec![
        schema_json(base, wire::USER_SCHEMA, "User", USER, quirks),
        schema_json(base, wire::GROUP_SCHEMA, "Group", GROUP, quirks),
        schema_json(
            base,
            SPC_SCHEMA,
            "ServiceProviderConfig",
            SERVICE_PROVIDER_CONFIG,
            quirks,
        ),
        schema_json(
            base,
            RESOURCE_TYPE_SCHEMA,
            "ResourceType",
            RESOURCE_TYPE,
            quirks,
        ),
        schema_json(base, SCHEMA_SCHEMA, "Schema", SCHEMA, quirks),
    ]
}

/// Every resource type `/ResourceTypes` publishes.
pub fn resource_types(base: &str) -> Vec<Value> {
    [Kind::Users, Kind::Groups]
        .iter()
        .map(|k| {
            let name = k.resource_type();
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": name,
                "name": name,
                "description": name,
                "endpoint": format!("/{}", k.endpoint()),
                "schema": k.schema(),
                "schemaExtensions": [],
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
            })
        })
        .collect()
}

pub fn service_provider_config(base: &str, quirks: &Quirks) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": quirks.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token in the Authorization header",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}
