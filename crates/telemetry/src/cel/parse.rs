//! The parser: tokens to a tree of [`Node`]s, by recursive descent over CEL's grammar.
//!
//! ```text
//! expr        = or ['?' or ':' expr]
//! or          = and {'||' and}
//! and         = relation {'&&' relation}
//! relation    = calc {('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') calc}
//! calc        = product {('+' | '-') product}
//! product     = unary {('*' | '/' | '%') unary}
//! unary       = member | '!'+ member | '-'+ member
//! member      = primary {'.' IDENT ['(' [args] ')'] | '[' expr ']'}
//! primary     = ['.'] IDENT ['(' [args] ')'] | '(' expr ')' | '[' [list] ']' | '{' [map] '}'
//!             | literal
//! ```
//!
//! Besides the grammar, the parser decides what names mean: an identifier chain with constant
//! string indexes becomes one attribute path ([`Kind::Attr`]), calls are resolved to a
//! [`Func`] (unknown names and wrong argument counts are errors here), macros (`has`,
//! `exists`, ...) get their own nodes, `&&`/`||` chains become balanced trees, and every node
//! records its depth so no tree deeper than [`MAX_DEPTH`] is built.

use super::lex::{self, Tok, Token};
use super::{ParseError, Value, MAX_DEPTH, MAX_TEXT_LEN};

/// The most memory a regex from `matches()` may compile to.
pub(super) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A node of the expression tree, with the depth of the subtree it roots (a leaf is 1).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub kind: Kind,
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Lit(Value),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// An identifier chain with its constant string indexes: `request.headers['x-user']` is
    /// `["request", "headers", "x-user"]`. The first name may be a macro's variable.
    Attr(Vec<String>),
    /// `operand.field` where the operand is not an attribute path (a computed map).
    Select(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    /// A function call; for methods the receiver is the first argument.
    Call(Func, Vec<Node>),
    /// `has(...)`: the argument is an [`Kind::Attr`], [`Kind::Select`] or [`Kind::Index`].
    Has(Box<Node>),
    Fold(Box<Fold>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// CEL's name for the operator's function, used in "no matching overload" errors.
    pub(super) fn name(self) -> &'static str {
        match self {
            BinOp::Eq => "_==_",
            BinOp::Ne => "_!=_",
            BinOp::Lt => "_<_",
            BinOp::Le => "_<=_",
            BinOp::Gt => "_>_",
            BinOp::Ge => "_>=_",
            BinOp::In => "@in",
            BinOp::Add => "_+_",
            BinOp::Sub => "_-_",
            BinOp::Mul => "_*_",
            BinOp::Div => "_/_",
            BinOp::Rem => "_%_",
        }
    }
}

/// The functions there are.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Func {
    Size,
    String,
    Int,
    Uint,
    Double,
    Bool,
    Bytes,
    Duration,
    Timestamp,
    Dyn,
    StartsWith,
    EndsWith,
    Contains,
    /// `matches`, with the pattern compiled at parse time when it is a valid string literal.
    Matches(Option<Pattern>),
    LowerAscii,
    UpperAscii,
}

impl Func {
    /// The function's CEL name.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Func::Size => "size",
            Func::String => "string",
            Func::Int => "int",
            Func::Uint => "uint",
            Func::Double => "double",
            Func::Bool => "bool",
            Func::Bytes => "bytes",
            Func::Duration => "duration",
            Func::Timestamp => "timestamp",
            Func::Dyn => "dyn",
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
            Func::Contains => "contains",
            Func::Matches(_) => "matches",
            Func::LowerAscii => "lowerAscii",
            Func::UpperAscii => "upperAscii",
        }
    }
}

/// Functions called as `f(x, ...)`: the function and its number of arguments.
fn global_function(name: &str) -> Option<(Func, usize)> {
    Some(match name {
        "size" => (Func::Size, 1),
        "string" => (Func::String, 1),
        "int" => (Func::Int, 1),
        "uint" => (Func::Uint, 1),
        "double" => (Func::Double, 1),
        "bool" => (Func::Bool, 1),
        "bytes" => (Func::Bytes, 1),
        "duration" => (Func::Duration, 1),
        "timestamp" => (Func::Timestamp, 1),
        "dyn" => (Func::Dyn, 1),
        "matches" => (Func::Matches(None), 2),
        _ => return None,
    })
}

/// Functions called as `x.f(...)`: the function and its number of arguments besides `x`.
fn method(name: &str) -> Option<(Func, usize)> {
    Some(match name {
        "size" => (Func::Size, 0),
        "startsWith" => (Func::StartsWith, 1),
        "endsWith" => (Func::EndsWith, 1),
        "contains" => (Func::Contains, 1),
        "matches" => (Func::Matches(None), 1),
        "lowerAscii" => (Func::LowerAscii, 0),
        "upperAscii" => (Func::UpperAscii, 0),
        _ => return None,
    })
}

/// A compiled regular expression; equal when the patterns are.
#[derive(Debug, Clone)]
pub(super) struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Compiles a `matches()` pattern, with a bound on its size.
pub(super) fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// A macro over the elements of a list (or the keys of a map).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fold {
    pub kind: FoldKind,
    /// The variable each element is bound to.
    pub var: String,
    pub range: Box<Node>,
    /// `map(x, filter, f)`'s filter.
    pub filter: Option<Box<Node>>,
    pub body: Box<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FoldKind {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

/// Parses `text` into an expression tree.
pub(super) fn parse(text: &str) -> Result<Node, ParseError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(ParseError::at(
            text,
            MAX_TEXT_LEN,
            format!(
                "expression is {} bytes long; the limit is {MAX_TEXT_LEN}",
                text.len()
            ),
        ));
    }
    let tokens = lex::tokens(text).map_err(|e| ParseError::at(text, e.at, e.message))?;
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
    };
    let root = parser.expr().map_err(|e| *e)?;
    let end = parser.peek();
    if end.tok != Tok::Eof {
        return Err(*parser.expected(end.at, "an operator or the end of the expression", &end.tok));
    }
    Ok(*root)
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    /// How many `expr`s are being parsed, one inside the other.
    depth: usize,
}

/// What the parser's functions return. Both sides are boxed to keep the recursive
/// functions' stack frames small: unoptimised builds give every temporary its own slot.
type Parsed = Result<Box<Node>, Fail>;
type Fail = Box<ParseError>;

impl Parser<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> Fail {
        Box::new(ParseError::at(self.text, at, message))
    }

    /// "expected `what`, found `found`" (kept out of line: the recursive functions that
    /// report it keep small stack frames).
    #[cold]
    #[inline(never)]
    fn expected(&self, at: usize, what: &str, found: &Tok) -> Fail {
        self.error(at, format!("expected {what}, found {}", found.describe()))
    }

    /// The current token (the last one, end of input, once past the end).
    fn peek(&self) -> &Token {
        static EOF: Token = Token {
            tok: Tok::Eof,
            at: usize::MAX,
        };
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .unwrap_or(&EOF)
    }

    fn at(&self) -> usize {
        self.peek().at
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// Consumes the current token if it is `tok`.
    fn eat(&mut self, tok: &Tok) -> bool {
        let yes = &self.peek().tok == tok;
        if yes {
            self.advance();
        }
        yes
    }

    /// Consumes `tok`, or fails saying `what` was expected.
    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), Fail> {
        if self.eat(tok) {
            return Ok(());
        }
        let found = self.peek();
        Err(self.expected(found.at, what, &found.tok))
    }

    /// A node for `kind`, at source position `at` (for the error when it is too deep).
    fn node(&self, kind: Kind, at: usize) -> Parsed {
        let depth = depth(&kind);
        if depth > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        Ok(Box::new(Node { kind, depth }))
    }

    fn too_deep(&self, at: usize) -> Fail {
        self.error(
            at,
            format!("expression is nested more than {MAX_DEPTH} levels deep"),
        )
    }

    fn expr(&mut self) -> Parsed {
        self.depth += 1;
        let result = if self.depth > MAX_DEPTH {
            Err(self.too_deep(self.at()))
        } else {
            self.conditional()
        };
        self.depth -= 1;
        result
    }

    fn conditional(&mut self) -> Parsed {
        let condition = self.binary(1)?;
        let at = self.at();
        if !self.eat(&Tok::Question) {
            return Ok(condition);
        }
        let then = self.binary(1)?;
        self.expect(&Tok::Colon, "':' (a conditional is c ? a : b)")?;
        let otherwise = self.expr()?;
        self.node(Kind::Cond(condition, then, otherwise), at)
    }

    /// Binary operators of precedence `min` or higher, by precedence climbing: the loop
    /// takes a left-associative chain, recursion only the right operands of tighter
    /// operators. `&&` and `||` chains become balanced trees.
    fn binary(&mut self, min: u8) -> Parsed {
        let mut left = self.unary()?;
        while let Some((op, precedence)) = binary_operator(&self.peek().tok) {
            if precedence < min {
                break;
            }
            let at = self.at();
            left = match op {
                Operator::Binary(op) => {
                    self.advance();
                    let right = self.binary(precedence + 1)?;
                    self.node(Kind::Binary(op, left, right), at)?
                }
                Operator::And | Operator::Or => {
                    let token = self.peek().tok.clone();
                    let mut operands = vec![*left];
                    while self.eat(&token) {
                        operands.push(*self.binary(precedence + 1)?);
                    }
                    let join = if op == Operator::And {
                        Kind::And
                    } else {
                        Kind::Or
                    };
                    self.balance(operands, join, at)?
                }
            };
        }
        Ok(left)
    }

    /// Joins a chain of `&&` or `||` operands as a balanced tree: the operators are
    /// associative (errors included), and a balanced tree keeps long chains shallow.
    fn balance(
        &self,
        mut operands: Vec<Node>,
        join: fn(Box<Node>, Box<Node>) -> Kind,
        at: usize,
    ) -> Parsed {
        if operands.len() <= 1 {
            return operands
                .pop()
                .map(Box::new)
                .ok_or_else(|| self.error(at, "expected an expression"));
        }
        let right = operands.split_off(operands.len() / 2);
        let left = self.balance(operands, join, at)?;
        let right = self.balance(right, join, at)?;
        self.node(join(left, right), at)
    }

    /// `!`s or `-`s before a member expression. A `-` directly before a number literal makes
    /// a negative literal, so `-9223372036854775808` is the smallest int.
    fn unary(&mut self) -> Parsed {
        let op = self.peek().tok.clone();
        if op != Tok::Bang && op != Tok::Minus {
            return self.member();
        }
        let mut ops = Vec::new();
        while self.peek().tok == op {
            ops.push(self.advance().at);
        }
        let mut operand = match (&op, self.peek().tok.clone()) {
            (Tok::Minus, Tok::Int(magnitude)) => {
                let at = ops.pop().unwrap_or_default();
                self.advance();
                let Some(value) = 0i64.checked_sub_unsigned(magnitude) else {
                    return Err(self.error(at, "integer literal out of range for int"));
                };
                let literal = self.node(Kind::Lit(Value::Int(value)), at)?;
                self.member_suffixes(literal)?
            }
            (Tok::Minus, Tok::Double(magnitude)) => {
                let at = ops.pop().unwrap_or_default();
                self.advance();
                let literal = self.node(Kind::Lit(Value::Double(-magnitude)), at)?;
                self.member_suffixes(literal)?
            }
            _ => self.member()?,
        };
        while let Some(at) = ops.pop() {
            let kind = if op == Tok::Bang {
                Kind::Not(operand)
            } else {
                Kind::Neg(operand)
            };
            operand = self.node(kind, at)?;
        }
        Ok(operand)
    }

    fn member(&mut self) -> Parsed {
        let primary = self.primary()?;
        self.member_suffixes(primary)
    }

    /// Field selections, method calls and indexes after `node`.
    fn member_suffixes(&mut self, mut node: Box<Node>) -> Parsed {
        loop {
            let at = self.at();
            match self.peek().tok {
                Tok::Dot => {
                    self.advance();
                    let name_at = self.at();
                    let name = match &self.peek().tok {
                        Tok::Ident(name) => name.clone(),
                        other => {
                            return Err(self.expected(
                                name_at,
                                "a field or method name after '.'",
                                other,
                            ))
                        }
                    };
                    self.advance();
                    if self.peek().tok == Tok::LParen {
                        if method(&name).is_none() && fold_kind(&name).is_none() {
                            return Err(self.error(name_at, unknown_method(&name)));
                        }
                        let args = self.args()?;
                        node = self.method_call(node, &name, args, name_at)?;
                    } else {
                        node = self.select(node, name, at)?;
                    }
                }
                Tok::LBracket => {
                    self.advance();
                    let index = self.expr()?;
                    self.expect(&Tok::RBracket, "']'")?;
                    node = match (&node.kind, &index.kind) {
                        (Kind::Attr(_), Kind::Lit(Value::String(key))) => {
                            let key = key.clone();
                            self.select(node, key, at)?
                        }
                        _ => self.node(Kind::Index(node, index), at)?,
                    };
                }
                Tok::LBrace if matches!(node.kind, Kind::Attr(_)) => {
                    return Err(self.error(
                        at,
                        "message construction (Type{field: value}) is not supported",
                    ));
                }
                _ => return Ok(node),
            }
        }
    }

    /// `node.field`: one more segment of an attribute path, or a field of a computed value.
    fn select(&self, mut node: Box<Node>, field: String, at: usize) -> Parsed {
        if let Kind::Attr(path) = &mut node.kind {
            path.push(field);
            node.depth = depth(&node.kind);
            if node.depth > MAX_DEPTH {
                return Err(self.too_deep(at));
            }
            return Ok(node);
        }
        self.node(Kind::Select(node, field), at)
    }

    fn primary(&mut self) -> Parsed {
        let token = self.advance();
        let at = token.at;
        let literal = Kind::Lit;
        let kind = match token.tok {
            Tok::Dot => {
                // `.name`: a name in the root scope, which is the only scope here.
                match self.peek().tok.clone() {
                    Tok::Ident(name) => {
                        self.advance();
                        return self.identifier(name, at);
                    }
                    other => {
                        return Err(self.expected(self.at(), "an identifier after '.'", &other))
                    }
                }
            }
            Tok::Ident(name) => return self.identifier(name, at),
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(&Tok::RParen, "')'")?;
                return Ok(inner);
            }
            Tok::LBracket => Kind::List(self.list()?),
            Tok::LBrace => Kind::Map(self.map()?),
            Tok::Int(v) => match i64::try_from(v) {
                Ok(v) => literal(Value::Int(v)),
                Err(_) => {
                    return Err(self.error(
                        at,
                        "integer literal out of range for int (a 'u' suffix makes a uint)",
                    ))
                }
            },
            Tok::Uint(v) => literal(Value::Uint(v)),
            Tok::Double(v) => literal(Value::Double(v)),
            Tok::Str(s) => literal(Value::String(s)),
            Tok::Bytes(b) => literal(Value::Bytes(b)),
            Tok::True => literal(Value::Bool(true)),
            Tok::False => literal(Value::Bool(false)),
            Tok::Null => literal(Value::Null),
            other => return Err(self.expected(at, "an expression", &other)),
        };
        self.node(kind, at)
    }

    /// An identifier just consumed: a global function call, or the start of an attribute path.
    fn identifier(&mut self, name: String, at: usize) -> Parsed {
        if self.peek().tok != Tok::LParen {
            return self.node(Kind::Attr(vec![name]), at);
        }
        if name != "has" && global_function(&name).is_none() {
            return Err(self.error(at, unknown_function(&name)));
        }
        let mut args = self.args()?;
        if name == "has" {
            return match args.pop() {
                Some(arg) if args.is_empty() && is_selection(&arg) => {
                    self.node(Kind::Has(Box::new(arg)), at)
                }
                _ => Err(self.error(
                    at,
                    "has() takes one field selection, like has(a.b) or has(a['b'])",
                )),
            };
        }
        let Some((func, arity)) = global_function(&name) else {
            return Err(self.error(at, unknown_function(&name)));
        };
        self.call(func, arity, args, &name, false, at)
    }

    /// `receiver.name(args)`: a method or a macro.
    fn method_call(
        &mut self,
        receiver: Box<Node>,
        name: &str,
        args: Vec<Node>,
        at: usize,
    ) -> Parsed {
        if let Some(kind) = fold_kind(name) {
            return self.fold(kind, receiver, args, name, at);
        }
        let Some((func, arity)) = method(name) else {
            return Err(self.error(at, unknown_method(name)));
        };
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(*receiver);
        all.extend(args);
        self.call(func, arity + 1, all, name, true, at)
    }

    /// A call of `func` with `args` (for a method, the receiver first), checking the
    /// argument count.
    fn call(
        &self,
        mut func: Func,
        arity: usize,
        args: Vec<Node>,
        name: &str,
        is_method: bool,
        at: usize,
    ) -> Parsed {
        if args.len() != arity {
            let receiver = usize::from(is_method);
            let (arity, found) = (arity - receiver, args.len() - receiver);
            let receiver = if is_method { "x." } else { "" };
            let plural = if arity == 1 { "" } else { "s" };
            return Err(self.error(
                at,
                format!("{receiver}{name}() takes {arity} argument{plural}, found {found}"),
            ));
        }
        if let (Func::Matches(compiled), Some(Kind::Lit(Value::String(pattern)))) =
            (&mut func, args.get(1).map(|n| &n.kind))
        {
            // An invalid pattern stays uncompiled: evaluation reports it (InvalidArgument).
            *compiled = compile_regex(pattern).ok().map(Pattern);
        }
        self.node(Kind::Call(func, args), at)
    }

    /// `range.all(x, p)` and the other macros binding a variable.
    fn fold(
        &self,
        kind: FoldKind,
        range: Box<Node>,
        mut args: Vec<Node>,
        name: &str,
        at: usize,
    ) -> Parsed {
        let arity_ok = args.len() == 2 || (kind == FoldKind::Map && args.len() == 3);
        if !arity_ok {
            let expected = if kind == FoldKind::Map { "2 or 3" } else { "2" };
            return Err(self.error(
                at,
                format!(
                    "x.{name}() takes {expected} arguments, found {}",
                    args.len()
                ),
            ));
        }
        let body = args
            .pop()
            .ok_or_else(|| self.error(at, "missing macro body"))?;
        let filter = if args.len() == 2 { args.pop() } else { None };
        let (body, filter) = (Box::new(body), filter.map(Box::new));
        let var = match args.pop().map(|n| n.kind) {
            Some(Kind::Attr(mut path)) if path.len() == 1 => path.pop().unwrap_or_default(),
            _ => {
                return Err(self.error(
                    at,
                    format!("the first argument of {name}() must be a variable name"),
                ))
            }
        };
        let fold = Fold {
            kind,
            var,
            range,
            filter,
            body,
        };
        self.node(Kind::Fold(Box::new(fold)), at)
    }

    /// `(a, b, ...)`, the current token being the `(`.
    fn args(&mut self) -> Result<Vec<Node>, Fail> {
        self.expect(&Tok::LParen, "'('")?;
        let mut args = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(*self.expr()?);
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            self.expect(&Tok::Comma, "',' or ')'")?;
        }
    }

    /// A list literal's elements, the `[` consumed. A trailing comma is allowed.
    fn list(&mut self) -> Result<Vec<Node>, Fail> {
        let mut items = Vec::new();
        loop {
            if self.eat(&Tok::RBracket) {
                return Ok(items);
            }
            items.push(*self.expr()?);
            if !self.eat(&Tok::Comma) {
                self.expect(&Tok::RBracket, "',' or ']'")?;
                return Ok(items);
            }
        }
    }

    /// A map literal's entries, the `{` consumed. A trailing comma is allowed.
    fn map(&mut self) -> Result<Vec<(Node, Node)>, Fail> {
        let mut entries = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                return Ok(entries);
            }
            let key = self.expr()?;
            self.expect(&Tok::Colon, "':' after a map key")?;
            let value = self.expr()?;
            entries.push((*key, *value));
            if !self.eat(&Tok::Comma) {
                self.expect(&Tok::RBrace, "',' or '}'")?;
                return Ok(entries);
            }
        }
    }
}

/// The error for calling `name(...)` when there is no such global function.
fn unknown_function(name: &str) -> String {
    if method(name).is_some() || fold_kind(name).is_some() {
        format!("'{name}' is a method: write x.{name}(...)")
    } else {
        format!("unknown function '{name}'")
    }
}

/// The error for calling `x.name(...)` when there is no such method.
fn unknown_method(name: &str) -> String {
    if global_function(name).is_some() || name == "has" {
        format!("'{name}' is not a method: write {name}(x)")
    } else {
        format!("unknown method '{name}'")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Or,
    And,
    Binary(BinOp),
}

/// The binary operator `tok` is, with its precedence: `||` 1, `&&` 2, relations 3, `+ -` 4,
/// `* / %` 5 (the conditional, `?:`, is 0).
fn binary_operator(tok: &Tok) -> Option<(Operator, u8)> {
    let binary = |op, precedence| Some((Operator::Binary(op), precedence));
    match tok {
        Tok::Or => Some((Operator::Or, 1)),
        Tok::And => Some((Operator::And, 2)),
        Tok::Eq => binary(BinOp::Eq, 3),
        Tok::Ne => binary(BinOp::Ne, 3),
        Tok::Lt => binary(BinOp::Lt, 3),
        Tok::Le => binary(BinOp::Le, 3),
        Tok::Gt => binary(BinOp::Gt, 3),
        Tok::Ge => binary(BinOp::Ge, 3),
        Tok::In => binary(BinOp::In, 3),
        Tok::Plus => binary(BinOp::Add, 4),
        Tok::Minus => binary(BinOp::Sub, 4),
        Tok::Star => binary(BinOp::Mul, 5),
        Tok::Slash => binary(BinOp::Div, 5),
        Tok::Percent => binary(BinOp::Rem, 5),
        _ => None,
    }
}

fn fold_kind(name: &str) -> Option<FoldKind> {
    Some(match name {
        "all" => FoldKind::All,
        "exists" => FoldKind::Exists,
        "exists_one" => FoldKind::ExistsOne,
        "map" => FoldKind::Map,
        "filter" => FoldKind::Filter,
        _ => return None,
    })
}

/// The depth of a node of this kind: one more than its deepest child.
fn depth(kind: &Kind) -> usize {
    let deepest = match kind {
        Kind::Lit(_) => 0,
        // Each segment of a path is a selection: `a.b.c` is as deep as `(a.b).c`.
        Kind::Attr(path) => path.len().saturating_sub(1),
        Kind::List(items) | Kind::Call(_, items) => {
            items.iter().map(|n| n.depth).max().unwrap_or(0)
        }
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| k.depth.max(v.depth))
            .max()
            .unwrap_or(0),
        Kind::Select(n, _) | Kind::Not(n) | Kind::Neg(n) | Kind::Has(n) => n.depth,
        Kind::Index(a, b) | Kind::Binary(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => {
            a.depth.max(b.depth)
        }
        Kind::Cond(a, b, c) => a.depth.max(b.depth).max(c.depth),
        Kind::Fold(fold) => fold
            .range
            .depth
            .max(fold.body.depth)
            .max(fold.filter.as_ref().map_or(0, |n| n.depth)),
    };
    deepest + 1
}

/// Whether `node` can be the argument of `has()`.
fn is_selection(node: &Node) -> bool {
    matches!(
        node.kind,
        Kind::Attr(_) | Kind::Select(..) | Kind::Index(..)
    )
}
