//! The wire types read and write the example payloads of RFC 7643 and RFC 7644.

use super::*;
use serde_json::json;

#[test]
fn reads_the_rfc_7643_group_example() {
    // RFC 7643 section 8.4.
    let group: Group = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {
                "value": "2819c223-7f76-453a-919d-413861904646",
                "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                "display": "Babs Jensen"
            },
            {
                "value": "902c246b-6245-4190-8e05-00816be7344a",
                "$ref": "https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a",
                "display": "Mandy Pepperidge"
            }
        ],
        "meta": {
            "resourceType": "Group",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff592\"",
            "location": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a"
        }
    }))
    .unwrap();
    assert_eq!(group.display_name, "Tour Guides");
    assert_eq!(
        group.id.as_deref(),
        Some("e9e30dba-f08f-4109-8486-d5c6a331660a")
    );
    let members = group.members.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].value, "902c246b-6245-4190-8e05-00816be7344a");
    assert_eq!(members[1].display.as_deref(), Some("Mandy Pepperidge"));
}

#[test]
fn writes_the_rfc_7644_add_members_patch() {
    // RFC 7644 section 3.5.2.1.
    let patch = PatchRequest::new(vec![PatchOperation {
        op: "add".into(),
        path: Some("members".into()),
        value: Some(json!([{
            "display": "Babs Jensen",
            "value": "2819c223-7f76-453a-919d-413861904646"
        }])),
    }]);
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{
                "op": "add",
                "path": "members",
                "value": [{
                    "display": "Babs Jensen",
                    "value": "2819c223-7f76-453a-919d-413861904646"
                }]
            }]
        })
    );
}

#[test]
fn reads_the_rfc_7644_filtered_remove_patch() {
    // RFC 7644 section 3.5.2.2.
    let patch: PatchRequest = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
            "op": "remove",
            "path": "members[value eq \"2819c223-7f76-...413861904646\"]"
        }]
    }))
    .unwrap();
    assert_eq!(patch.operations[0].op, "remove");
    assert_eq!(
        patch.operations[0].path.as_deref(),
        Some("members[value eq \"2819c223-7f76-...413861904646\"]")
    );
    assert_eq!(patch.operations[0].value, None);
}

#[test]
fn reads_the_rfc_7644_list_response_and_error() {
    // RFC 7644 sections 3.4.2 and 3.12.
    let list: ListResponse<Value> = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 2,
        "Resources": [
            {"id": "2819c223-7f76-453a-919d-413861904646", "userName": "bjensen"},
            {"id": "c75ad752-64ae-4823-840d-ffa80929976c", "userName": "jsmith"}
        ]
    }))
    .unwrap();
    assert_eq!(list.total_results, 2);
    assert_eq!(user_values(&list.resources[1], "userName"), ["jsmith"]);
    let error: ErrorResponse = serde_json::from_value(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "scimType": "mutability",
        "detail": "Attribute 'id' is readOnly",
        "status": "400"
    }))
    .unwrap();
    assert_eq!(error.scim_type.as_deref(), Some("mutability"));
    assert_eq!(error.detail.as_deref(), Some("Attribute 'id' is readOnly"));
}

#[test]
fn user_values_reads_simple_and_multi_valued_attributes() {
    let user = json!({
        "id": "u1",
        "userName": "Babs@Example.com",
        "emails": [{"value": "babs@example.com", "type": "work"}, {"value": "b@home.org"}]
    });
    assert_eq!(user_values(&user, "username"), ["Babs@Example.com"]);
    assert_eq!(
        user_values(&user, "emails"),
        ["babs@example.com", "b@home.org"]
    );
    assert_eq!(
        user_values(&user, "emails.value"),
        ["babs@example.com", "b@home.org"]
    );
    assert!(user_values(&user, "externalId").is_empty());
}

#[test]
fn filters_quote_their_values() {
    assert_eq!(eq_filter("userName", "a\"b"), "userName eq \"a\\\"b\"");
}
