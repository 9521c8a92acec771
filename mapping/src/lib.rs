//! Destination mapping files: load and validate them with `file:line:col` errors, then
//! evaluate them against a subject (a SCIM resource as JSON).
//!
//! One YAML file describes one destination (a CRM, a CDP, a webhook):
//!
//! ```yaml
//! destination: crm-webhook          # unique name, [a-z0-9][a-z0-9_-]*
//! connector: webhook                # checked by the hub against its connector registry
//! enabled: true                     # default true
//! brand: acme                       # optional: only subjects of this brand
//! settings:                         # connector-specific; strings may use ${env:NAME}
//!   url: http://127.0.0.1:9000/hook
//!   secret: ${env:CRM_WEBHOOK_SECRET}
//! consent: [marketing_email]        # purposes that must all be granted; default []
//! on_delete: delete                 # delete | suppress | ignore; default delete
//! on_withdraw: suppress             # suppress | unsubscribe | delete | ignore; default suppress
//! when: active eq true              # optional SCIM filter on the subject
//! fields:
//!   email:
//!     from: emails[primary eq true].value     # SCIM value path (or `value:` for a constant)
//!     transform: [trim, lowercase]            # applied in order
//!   country:
//!     from: addresses[primary eq true].country
//!     map: { DE: Germany }                    # unmapped values pass through
//!     default: unknown                        # when nothing is left
//!   birthday:
//!     from: urn:ietf:params:scim:schemas:extension:syncd:2.0:User:birthdate
//!     transform: [{ date: "%d/%m/%Y" }]
//!     consent: analytics                      # field sent only if this purpose is granted
//! ```
//!
//! A field takes the first value its path selects, applies its transforms in order
//! (see [`Transform`]), then `map`, then falls back to `default`; if nothing is left the
//! field is omitted. Validation is strict (unknown keys are errors) and reports every
//! problem of a file at once. `/mappings/schema.json` describes the same format for editors.
//!
//! Entry points: [`parse_file`], [`load_file`], [`load_dir`], then
//! [`Destination::applies_to`] and [`Destination::map`].

mod destination;
mod error;
mod field;
mod load;
mod parse;
mod positions;
mod settings;
mod transform;
mod tree;

pub use destination::{Destination, OnDelete, OnWithdraw};
pub use error::MappingError;
pub use field::{FieldRule, FieldSource};
pub use load::{load_dir, load_file};
pub use parse::parse_file;
pub use positions::Positions;
pub use settings::Settings;
pub use transform::{Arity, Transform};
