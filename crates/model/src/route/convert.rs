//! RouteConfiguration → RouteConfig.
