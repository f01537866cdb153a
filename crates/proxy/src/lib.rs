//! bowline's data plane: the same job as Envoy on the same xDS, converted once into
//! `bowline-model` values and served from an immutable [`Config`] snapshot.
