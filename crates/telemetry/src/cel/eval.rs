//! The evaluator: walks the tree against a request's attributes.
//!
//! Recursion follows the tree, whose depth the parser bounds; loops (macros) are counted
//! against [`MAX_ITERATIONS`]. Every operation is checked: nothing here can panic on a value.

use std::cmp::Ordering;

use super::parse::{compile_regex, BinOp, Fold, FoldKind, Func, Kind, Node};
use super::text::{format_double, parse_duration, parse_timestamp, system_time, unix_parts};
use super::{Attributes, EvalError, Value, MAX_ITERATIONS};

type Res = Result<Value, EvalError>;

/// Evaluates `root` against `attrs`.
pub(super) fn eval(root: &Node, attrs: &dyn Attributes) -> Res {
    Evaluator {
        attrs,
        locals: Vec::new(),
        iterations: 0,
    }
    .eval(root)
}

struct Evaluator<'a> {
    attrs: &'a dyn Attributes,
    /// The macro variables in scope, innermost last.
    locals: Vec<(&'a str, Value)>,
    /// Macro iterations run so far.
    iterations: usize,
}

/// "No matching overload" for `name` applied to values of these types.
fn overload<'v>(name: &str, args: impl IntoIterator<Item = &'v Value>) -> EvalError {
    let types: Vec<&str> = args.into_iter().map(Value::type_name).collect();
    EvalError::NoMatchingOverload(format!("{name}({})", types.join(", ")))
}

impl<'a> Evaluator<'a> {
    fn eval(&mut self, node: &'a Node) -> Res {
        match &node.kind {
            Kind::Lit(value) => Ok(value.clone()),
            Kind::List(items) => items
                .iter()
                .map(|item| self.eval(item))
                .collect::<Result<_, _>>()
                .map(Value::List),
            Kind::Map(entries) => self.map_literal(entries),
            Kind::Attr(path) => self.resolve(path),
            Kind::Select(operand, field) => {
                let value = self.eval(operand)?;
                field_of(&value, field).cloned()
            }
            Kind::Index(operand, index) => {
                let value = self.eval(operand)?;
                let index = self.eval(index)?;
                index_of(&value, &index).cloned()
            }
            Kind::Not(operand) => match self.eval(operand)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                other => Err(overload("!_", [&other])),
            },
            Kind::Neg(operand) => negate(self.eval(operand)?),
            Kind::Binary(op, left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                binary(*op, left, right)
            }
            Kind::And(left, right) => self.logic(left, right, false),
            Kind::Or(left, right) => self.logic(left, right, true),
            Kind::Cond(condition, then, otherwise) => match self.eval(condition)? {
                Value::Bool(true) => self.eval(then),
                Value::Bool(false) => self.eval(otherwise),
                other => Err(overload("_?_:_", [&other])),
            },
            Kind::Call(func, args) => {
                let args = args
                    .iter()
                    .map(|arg| self.eval(arg))
                    .collect::<Result<Vec<_>, _>>()?;
                call(func, &args)
            }
            Kind::Has(arg) => self.has(arg).map(Value::Bool),
            Kind::Fold(fold) => self.fold(fold),
        }
    }

    /// `&&` (`decisive` false) or `||` (`decisive` true): the decisive value on either side
    /// wins, even over an error on the other; the right side is not evaluated when the left
    /// decides. Otherwise an error (left first) or a non-bool operand is the result.
    fn logic(&mut self, left: &'a Node, right: &'a Node, decisive: bool) -> Res {
        let left = self.eval(left);
        if matches!(left, Ok(Value::Bool(b)) if b == decisive) {
            return Ok(Value::Bool(decisive));
        }
        let right = self.eval(right);
        if matches!(right, Ok(Value::Bool(b)) if b == decisive) {
            return Ok(Value::Bool(decisive));
        }
        match (left, right) {
            (Ok(Value::Bool(_)), Ok(Value::Bool(_))) => Ok(Value::Bool(!decisive)),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(l), Ok(r)) => Err(overload(if decisive { "_||_" } else { "_&&_" }, [&l, &r])),
        }
    }

    /// The value at an attribute path: a macro variable's, or the attributes' (longest
    /// prefix first, selecting the rest of the path from a map).
    fn resolve(&self, path: &[String]) -> Res {
        let Some((first, rest)) = path.split_first() else {
            return Err(EvalError::NoSuchAttribute(String::new()));
        };
        if let Some((_, value)) = self.locals.iter().rev().find(|(name, _)| name == first) {
            return select_path(value, rest).cloned();
        }
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        for len in (1..=segments.len()).rev() {
            if let Some(value) = self.attrs.attribute(&segments[..len]) {
                return match select_path(&value, &path[len..]) {
                    Ok(found) => Ok(found.clone()),
                    Err(EvalError::NoSuchKey(_)) => Err(EvalError::NoSuchAttribute(path.join("."))),
                    Err(e) => Err(e),
                };
            }
        }
        Err(EvalError::NoSuchAttribute(path.join(".")))
    }

    /// `has(arg)`: whether the attribute, field or key exists. Errors other than its absence
    /// (evaluating the map itself, or selecting from a value that is not a map) propagate.
    fn has(&mut self, arg: &'a Node) -> Result<bool, EvalError> {
        match &arg.kind {
            Kind::Attr(path) => match self.resolve(path) {
                Ok(_) => Ok(true),
                Err(EvalError::NoSuchAttribute(_) | EvalError::NoSuchKey(_)) => Ok(false),
                Err(e) => Err(e),
            },
            Kind::Select(operand, field) => match self.eval(operand)? {
                Value::Map(entries) => Ok(entries.iter().any(|(k, _)| is_string(k, field))),
                other => Err(overload("has", [&other])),
            },
            Kind::Index(operand, index) => {
                let value = self.eval(operand)?;
                let index = self.eval(index)?;
                match &value {
                    Value::Map(entries) => Ok(lookup(entries, &index).is_some()),
                    Value::List(items) => Ok(list_position(items.len(), &index)?.is_some()),
                    _ => Err(overload("has", [&value, &index])),
                }
            }
            _ => Err(EvalError::InvalidArgument(
                "has() needs a field selection".to_owned(),
            )),
        }
    }

    fn map_literal(&mut self, entries: &'a [(Node, Node)]) -> Res {
        let mut map = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let key = self.eval(key)?;
            if !matches!(
                key,
                Value::Int(_) | Value::Uint(_) | Value::Bool(_) | Value::String(_)
            ) {
                return Err(EvalError::InvalidArgument(format!(
                    "a map key must be an int, uint, bool or string, not {}",
                    key.type_name()
                )));
            }
            let value = self.eval(value)?;
            if lookup(&map, &key).is_some() {
                return Err(EvalError::InvalidArgument(format!(
                    "duplicate map key {}",
                    key.to_literal()
                )));
            }
            map.push((key, value));
        }
        Ok(Value::Map(map))
    }

    /// Evaluates `node` with `var` bound to `item`; gives the item back.
    fn with_local(&mut self, var: &'a str, item: Value, node: &'a Node) -> (Res, Value) {
        self.locals.push((var, item));
        let result = self.eval(node);
        let item = self
            .locals
            .pop()
            .map(|(_, item)| item)
            .unwrap_or(Value::Null);
        (result, item)
    }

    /// A predicate's value for one element, which must be a bool.
    fn predicate(
        &mut self,
        fold: &'a Fold,
        node: &'a Node,
        item: Value,
    ) -> (Result<bool, EvalError>, Value) {
        let (result, item) = self.with_local(&fold.var, item, node);
        let result = match result {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(overload(fold_name(fold.kind), [&other])),
            Err(e) => Err(e),
        };
        (result, item)
    }

    /// `all`, `exists`, `exists_one`, `map` and `filter` over a list's elements or a map's keys.
    fn fold(&mut self, fold: &'a Fold) -> Res {
        let items = match self.eval(&fold.range)? {
            Value::List(items) => items,
            Value::Map(entries) => entries.into_iter().map(|(k, _)| k).collect(),
            other => return Err(overload(fold_name(fold.kind), [&other])),
        };
        let mut kept = Vec::new();
        let mut count = 0usize;
        let mut error = None;
        for item in items {
            self.iterations += 1;
            if self.iterations > MAX_ITERATIONS {
                return Err(EvalError::LimitExceeded(format!(
                    "more than {MAX_ITERATIONS} macro iterations"
                )));
            }
            match fold.kind {
                // Like `&&` and `||`: a decisive element wins over errors on others.
                FoldKind::All | FoldKind::Exists => {
                    let decisive = fold.kind == FoldKind::Exists;
                    match self.predicate(fold, &fold.body, item).0 {
                        Ok(b) if b == decisive => return Ok(Value::Bool(decisive)),
                        Ok(_) => {}
                        Err(e) => {
                            error.get_or_insert(e);
                        }
                    }
                }
                FoldKind::ExistsOne => {
                    count += usize::from(self.predicate(fold, &fold.body, item).0?);
                }
                FoldKind::Filter => {
                    let (keep, item) = self.predicate(fold, &fold.body, item);
                    if keep? {
                        kept.push(item);
                    }
                }
                FoldKind::Map => {
                    let item = match &fold.filter {
                        Some(filter) => match self.predicate(fold, filter, item) {
                            (Ok(true), item) => item,
                            (Ok(false), _) => continue,
                            (Err(e), _) => return Err(e),
                        },
                        None => item,
                    };
                    kept.push(self.with_local(&fold.var, item, &fold.body).0?);
                }
            }
        }
        match fold.kind {
            FoldKind::All | FoldKind::Exists => match error {
                Some(e) => Err(e),
                None => Ok(Value::Bool(fold.kind == FoldKind::All)),
            },
            FoldKind::ExistsOne => Ok(Value::Bool(count == 1)),
            FoldKind::Map | FoldKind::Filter => Ok(Value::List(kept)),
        }
    }
}

fn fold_name(kind: FoldKind) -> &'static str {
    match kind {
        FoldKind::All => "all",
        FoldKind::Exists => "exists",
        FoldKind::ExistsOne => "exists_one",
        FoldKind::Map => "map",
        FoldKind::Filter => "filter",
    }
}

fn is_string(value: &Value, s: &str) -> bool {
    matches!(value, Value::String(v) if v == s)
}

/// `value.field`: a map's entry under the string key `field`.
fn field_of<'v>(value: &'v Value, field: &str) -> Result<&'v Value, EvalError> {
    match value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| is_string(k, field))
            .map(|(_, v)| v)
            .ok_or_else(|| EvalError::NoSuchKey(Value::String(field.to_owned()).to_literal())),
        other => Err(EvalError::NoMatchingOverload(format!(
            "field selection .{field} on {}",
            other.type_name()
        ))),
    }
}

/// The value at `path` below `value` (field selections).
fn select_path<'v>(value: &'v Value, path: &[String]) -> Result<&'v Value, EvalError> {
    path.iter()
        .try_fold(value, |value, field| field_of(value, field))
}

/// `value[index]`: a list's element or a map's entry.
fn index_of<'v>(value: &'v Value, index: &Value) -> Result<&'v Value, EvalError> {
    match value {
        Value::List(items) => match list_position(items.len(), index)? {
            Some(i) => Ok(&items[i]),
            None => Err(EvalError::IndexOutOfRange(format!(
                "{} in a list of size {}",
                index.to_literal(),
                items.len()
            ))),
        },
        Value::Map(entries) => {
            lookup(entries, index).ok_or_else(|| EvalError::NoSuchKey(index.to_literal()))
        }
        _ => Err(overload("_[_]", [value, index])),
    }
}

/// Where `index` points in a list of `len` elements: `None` outside it. Ints, uints and
/// whole doubles are indexes.
fn list_position(len: usize, index: &Value) -> Result<Option<usize>, EvalError> {
    let position = match index {
        Value::Int(i) => usize::try_from(*i).ok(),
        Value::Uint(u) => usize::try_from(*u).ok(),
        Value::Double(d) if d.fract() == 0.0 => {
            (*d >= 0.0 && *d < len as f64).then_some(*d as usize)
        }
        Value::Double(d) => {
            return Err(EvalError::InvalidArgument(format!(
                "list index {} is not a whole number",
                format_double(*d)
            )))
        }
        other => return Err(overload("_[_]", [&Value::List(Vec::new()), other])),
    };
    Ok(position.filter(|i| *i < len))
}

/// A map's value under `key` (keys compared with CEL equality, so `1`, `1u` and `1.0` are one key).
fn lookup<'v>(entries: &'v [(Value, Value)], key: &Value) -> Option<&'v Value> {
    entries.iter().find(|(k, _)| equal(k, key)).map(|(_, v)| v)
}

/// CEL equality: numbers compare by value across int, uint and double; lists element-wise;
/// maps as sets of entries; other values of different types are not equal.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    if let Some(order) = numeric_order(a, b) {
        return order == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| lookup(y, k).is_some_and(|w| equal(v, w)))
        }
        _ => false,
    }
}

/// The order of two numbers of any numeric types, exactly (no rounding through f64):
/// `None` when either is not a number, `Some(None)` when a NaN makes them unordered.
fn numeric_order(a: &Value, b: &Value) -> Option<Option<Ordering>> {
    Some(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(int_uint_order(*x, *y)),
        (Value::Uint(x), Value::Int(y)) => Some(int_uint_order(*y, *x).reverse()),
        (Value::Int(x), Value::Double(y)) => int_double_order(*x, *y),
        (Value::Double(x), Value::Int(y)) => int_double_order(*y, *x).map(Ordering::reverse),
        (Value::Uint(x), Value::Double(y)) => uint_double_order(*x, *y),
        (Value::Double(x), Value::Uint(y)) => uint_double_order(*y, *x).map(Ordering::reverse),
        _ => return None,
    })
}

fn int_uint_order(i: i64, u: u64) -> Ordering {
    match u64::try_from(i) {
        Ok(i) => i.cmp(&u),
        Err(_) => Ordering::Less,
    }
}

/// 2^63 and 2^64, exactly representable as doubles.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn int_double_order(i: i64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if d < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = d.trunc();
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(d - whole)),
        order => Some(order),
    }
}

fn uint_double_order(u: u64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_POW_64 {
        return Some(Ordering::Less);
    }
    if d < 0.0 {
        return Some(Ordering::Greater);
    }
    let whole = d.trunc();
    match u.cmp(&(whole as u64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(d - whole)),
        order => Some(order),
    }
}

/// The order of two values for `<`, `<=`, `>`, `>=`: `Ok(None)` when unordered (NaN).
fn order(op: BinOp, a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    if let Some(order) = numeric_order(a, b) {
        return Ok(order);
    }
    Ok(Some(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Duration(x), Value::Duration(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        _ => return Err(overload(op.name(), [a, b])),
    }))
}

fn binary(op: BinOp, left: Value, right: Value) -> Res {
    let ordered = |wanted: fn(Ordering) -> bool| -> Res {
        Ok(Value::Bool(order(op, &left, &right)?.is_some_and(wanted)))
    };
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(&left, &right))),
        BinOp::Ne => Ok(Value::Bool(!equal(&left, &right))),
        BinOp::Lt => ordered(Ordering::is_lt),
        BinOp::Le => ordered(Ordering::is_le),
        BinOp::Gt => ordered(Ordering::is_gt),
        BinOp::Ge => ordered(Ordering::is_ge),
        BinOp::In => match &right {
            Value::List(items) => Ok(Value::Bool(items.iter().any(|item| equal(item, &left)))),
            Value::Map(entries) => Ok(Value::Bool(lookup(entries, &left).is_some())),
            _ => Err(overload(op.name(), [&left, &right])),
        },
        BinOp::Add => add(left, right),
        BinOp::Sub => subtract(left, right),
        BinOp::Mul => match (&left, &right) {
            (Value::Int(a), Value::Int(b)) => {
                a.checked_mul(*b).map(Value::Int).ok_or(EvalError::Overflow)
            }
            (Value::Uint(a), Value::Uint(b)) => a
                .checked_mul(*b)
                .map(Value::Uint)
                .ok_or(EvalError::Overflow),
            (Value::Double(a), Value::Double(b)) => Ok(Value::Double(a * b)),
            _ => Err(overload(op.name(), [&left, &right])),
        },
        BinOp::Div | BinOp::Rem => divide(op, left, right),
    }
}

fn add(left: Value, right: Value) -> Res {
    Ok(match (left, right) {
        (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_add(b).ok_or(EvalError::Overflow)?),
        (Value::Uint(a), Value::Uint(b)) => {
            Value::Uint(a.checked_add(b).ok_or(EvalError::Overflow)?)
        }
        (Value::Double(a), Value::Double(b)) => Value::Double(a + b),
        (Value::String(mut a), Value::String(b)) => {
            a.push_str(&b);
            Value::String(a)
        }
        (Value::Bytes(mut a), Value::Bytes(b)) => {
            a.extend_from_slice(&b);
            Value::Bytes(a)
        }
        (Value::List(mut a), Value::List(b)) => {
            a.extend(b);
            Value::List(a)
        }
        (Value::Duration(a), Value::Duration(b)) => {
            Value::Duration(a.checked_add(b).ok_or(EvalError::Overflow)?)
        }
        (Value::Timestamp(t), Value::Duration(d)) | (Value::Duration(d), Value::Timestamp(t)) => {
            Value::Timestamp(t.checked_add(d).ok_or(EvalError::Overflow)?)
        }
        (a, b) => return Err(overload("_+_", [&a, &b])),
    })
}

fn subtract(left: Value, right: Value) -> Res {
    Ok(match (&left, &right) {
        (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_sub(*b).ok_or(EvalError::Overflow)?),
        (Value::Uint(a), Value::Uint(b)) => {
            Value::Uint(a.checked_sub(*b).ok_or(EvalError::Overflow)?)
        }
        (Value::Double(a), Value::Double(b)) => Value::Double(a - b),
        (Value::Duration(a), Value::Duration(b)) => {
            Value::Duration(a.checked_sub(*b).ok_or(EvalError::Overflow)?)
        }
        (Value::Timestamp(t), Value::Duration(d)) => {
            Value::Timestamp(t.checked_sub(*d).ok_or(EvalError::Overflow)?)
        }
        (Value::Timestamp(a), Value::Timestamp(b)) => {
            Value::Duration(a.duration_since(*b).map_err(|_| EvalError::Overflow)?)
        }
        _ => return Err(overload("_-_", [&left, &right])),
    })
}

/// `/` and `%`: integer division truncates; a zero divisor is an error for ints and uints
/// (doubles divide to infinity or NaN); doubles have no `%`.
fn divide(op: BinOp, left: Value, right: Value) -> Res {
    let rem = op == BinOp::Rem;
    match (&left, &right) {
        (Value::Int(_), Value::Int(0)) | (Value::Uint(_), Value::Uint(0)) => {
            Err(EvalError::DivisionByZero)
        }
        (Value::Int(a), Value::Int(b)) => {
            let result = if rem {
                a.checked_rem(*b)
            } else {
                a.checked_div(*b)
            };
            result.map(Value::Int).ok_or(EvalError::Overflow)
        }
        (Value::Uint(a), Value::Uint(b)) => Ok(Value::Uint(if rem { a % b } else { a / b })),
        (Value::Double(a), Value::Double(b)) if !rem => Ok(Value::Double(a / b)),
        _ => Err(overload(op.name(), [&left, &right])),
    }
}

fn negate(value: Value) -> Res {
    match value {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
        Value::Double(d) => Ok(Value::Double(-d)),
        other => Err(overload("-_", [&other])),
    }
}

/// A function applied to its evaluated arguments (a method's receiver first).
fn call(func: &Func, args: &[Value]) -> Res {
    use Value::{Bool, Int, String as Str};
    Ok(match (func, args) {
        (Func::Size, [x]) => {
            let size = match x {
                Str(s) => s.chars().count(),
                Value::Bytes(b) => b.len(),
                Value::List(items) => items.len(),
                Value::Map(entries) => entries.len(),
                _ => return Err(overload("size", args)),
            };
            Int(i64::try_from(size).map_err(|_| EvalError::Overflow)?)
        }
        (Func::String, [x]) => Str(to_string(x)?),
        (Func::Int, [x]) => to_int(x)?,
        (Func::Uint, [x]) => to_uint(x)?,
        (Func::Double, [x]) => to_double(x)?,
        (Func::Bool, [x]) => to_bool(x)?,
        (Func::Bytes, [Value::Bytes(b)]) => Value::Bytes(b.clone()),
        (Func::Bytes, [Str(s)]) => Value::Bytes(s.as_bytes().to_vec()),
        (Func::Duration, [Value::Duration(d)]) => Value::Duration(*d),
        (Func::Duration, [Str(s)]) => Value::Duration(parse_duration(s)?),
        (Func::Timestamp, [Value::Timestamp(t)]) => Value::Timestamp(*t),
        (Func::Timestamp, [Str(s)]) => Value::Timestamp(parse_timestamp(s)?),
        (Func::Timestamp, [Int(secs)]) => {
            Value::Timestamp(system_time(*secs, 0).ok_or(EvalError::Overflow)?)
        }
        (Func::Dyn, [x]) => x.clone(),
        (Func::StartsWith, [Str(s), Str(prefix)]) => Bool(s.starts_with(prefix.as_str())),
        (Func::EndsWith, [Str(s), Str(suffix)]) => Bool(s.ends_with(suffix.as_str())),
        (Func::Contains, [Str(s), Str(part)]) => Bool(s.contains(part.as_str())),
        (Func::Matches(compiled), [Str(s), Str(pattern)]) => Bool(match compiled {
            Some(regex) => regex.0.is_match(s),
            None => compile_regex(pattern)
                .map_err(|e| {
                    EvalError::InvalidArgument(format!(
                        "invalid regular expression '{pattern}': {e}"
                    ))
                })?
                .is_match(s),
        }),
        (Func::LowerAscii, [Str(s)]) => Str(s.to_ascii_lowercase()),
        (Func::UpperAscii, [Str(s)]) => Str(s.to_ascii_uppercase()),
        (func, args) => return Err(overload(func.name(), args)),
    })
}

/// `string(x)`.
fn to_string(x: &Value) -> Result<String, EvalError> {
    Ok(match x {
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8(b.clone())
            .map_err(|_| EvalError::InvalidArgument("bytes are not valid UTF-8".to_owned()))?,
        Value::Bool(_)
        | Value::Int(_)
        | Value::Uint(_)
        | Value::Double(_)
        | Value::Duration(_)
        | Value::Timestamp(_) => x.to_label(),
        _ => return Err(overload("string", [x])),
    })
}

/// Whether a double truncates to an integer in `[min, max)`; the truncated value.
fn whole_in(d: f64, min: f64, max: f64) -> Option<f64> {
    let whole = d.trunc();
    (whole >= min && whole < max).then_some(whole)
}

/// `int(x)`: truncates doubles; a timestamp is its Unix seconds.
fn to_int(x: &Value) -> Res {
    Ok(Value::Int(match x {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).map_err(|_| EvalError::Overflow)?,
        Value::Double(d) => {
            whole_in(*d, -TWO_POW_63, TWO_POW_63).ok_or(EvalError::Overflow)? as i64
        }
        Value::String(s) => s
            .parse()
            .map_err(|_| EvalError::InvalidArgument(format!("cannot convert '{s}' to int")))?,
        Value::Timestamp(t) => unix_parts(*t).0,
        _ => return Err(overload("int", [x])),
    }))
}

/// `uint(x)`: truncates doubles.
fn to_uint(x: &Value) -> Res {
    Ok(Value::Uint(match x {
        Value::Uint(u) => *u,
        Value::Int(i) => u64::try_from(*i).map_err(|_| EvalError::Overflow)?,
        Value::Double(d) => whole_in(*d, 0.0, TWO_POW_64).ok_or(EvalError::Overflow)? as u64,
        Value::String(s) => s
            .parse()
            .map_err(|_| EvalError::InvalidArgument(format!("cannot convert '{s}' to uint")))?,
        _ => return Err(overload("uint", [x])),
    }))
}

/// `double(x)`.
fn to_double(x: &Value) -> Res {
    Ok(Value::Double(match x {
        Value::Double(d) => *d,
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::String(s) => s
            .parse()
            .map_err(|_| EvalError::InvalidArgument(format!("cannot convert '{s}' to double")))?,
        _ => return Err(overload("double", [x])),
    }))
}

/// `bool(x)`: the strings cel-go accepts (`true`, `TRUE`, `True`, `t`, `1` and their opposites).
fn to_bool(x: &Value) -> Res {
    Ok(Value::Bool(match x {
        Value::Bool(b) => *b,
        Value::String(s) => match s.as_str() {
            "true" | "TRUE" | "True" | "t" | "1" => true,
            "false" | "FALSE" | "False" | "f" | "0" => false,
            _ => {
                return Err(EvalError::InvalidArgument(format!(
                    "cannot convert '{s}' to bool"
                )))
            }
        },
        _ => return Err(overload("bool", [x])),
    }))
}
