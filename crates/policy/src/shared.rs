//! What every policy evaluating one request reads, converted once: the
//! CEL variables of VAPs and `validate.cel` rules, and the JMESPath
//! variables of Kyverno rules. Ten policies on one object convert the
//! object once each way, not once per policy.

use std::cell::OnceCell;

use gitplane_cel::Activation;
use gitplane_object::{Map, Value};

use crate::kyverno::images;
use crate::kyverno::vars::Vars;
use crate::request::Request;

/// One request and its conversions, made when first needed.
pub struct Shared<'a> {
    /// The request.
    pub request: Request<'a>,
    /// More CEL variables (Kyverno's cluster libraries answered from
    /// supplied data).
    cel_variables: &'a [(String, Value)],
    activation: OnceCell<Activation>,
    vars: OnceCell<Vars>,
}

impl<'a> Shared<'a> {
    /// Nothing converted yet.
    pub fn new(request: Request<'a>) -> Shared<'a> {
        Shared::with_cel_variables(request, &[])
    }

    /// Also binding these CEL variables.
    pub fn with_cel_variables(
        request: Request<'a>,
        cel_variables: &'a [(String, Value)],
    ) -> Shared<'a> {
        Shared {
            request,
            cel_variables,
            activation: OnceCell::new(),
            vars: OnceCell::new(),
        }
    }

    /// `object`, `oldObject`, `request` (without the objects) and
    /// `namespaceObject`, as CEL values.
    pub fn activation(&self) -> &Activation {
        self.activation.get_or_init(|| {
            let request = &self.request;
            let mut activation = Activation::new();
            activation.set_json("object", request.object);
            activation.set_json("oldObject", request.old_object.unwrap_or(&Value::Null));
            let mut short = request.admission_request();
            if let Some(map) = short.as_object_mut() {
                map.remove("object");
                map.remove("oldObject");
            }
            activation.set_json("request", &short);
            activation.set_json(
                "namespaceObject",
                request.namespace_object.unwrap_or(&Value::Null),
            );
            for (name, value) in self.cel_variables {
                activation.set_json(name, value);
            }
            activation
        })
    }

    /// `request`, `images` and the service account, as Kyverno variables.
    pub fn vars(&self) -> &Vars {
        self.vars.get_or_init(|| {
            let request = &self.request;
            let mut root = Map::new();
            root.insert("request".into(), request.admission_request());
            if let Some(spec) = crate::pss::pod_spec_of(request.object) {
                root.insert("images".into(), images::images(spec));
            }
            if let Some(sa) = request.user.username.strip_prefix("system:serviceaccount:")
                && let Some((ns, name)) = sa.split_once(':')
            {
                root.insert("serviceAccountName".into(), Value::from(name));
                root.insert("serviceAccountNamespace".into(), Value::from(ns));
            }
            Vars::new(&root)
        })
    }
}
