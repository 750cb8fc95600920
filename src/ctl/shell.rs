//! supervisorctl's interactive shell (`supervisorctl` with no command, or `-i`): Python's
//! `cmd.Cmd` loop over [`Ctl::onecmd`], and the console it reads from.
//!
//! When stdin and stdout are both terminals, lines are read with line editing, history
//! (`-r`/`history_file`, kept as plain lines like GNU readline's file) and Tab completion
//! of command, group and process names, completing exactly what Python's
//! `Controller.complete` offers. Otherwise (commands piped in) the prompt is written to
//! stdout and a line read from stdin, as Python's `input()` does then. Every stdin read of
//! the client, `fg`'s included, goes through one unbuffered-beyond-need reader, so no typed
//! line is swallowed by a command that ended.

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};

use super::client::Client;
use super::commands::{Ctl, ShellInput, StdinLine};

impl Ctl<'_> {
    /// `Controller.exec_cmdloop`: `status` first, then one command per line until `EOF`,
    /// `quit`, `exit` or Ctrl-C at the prompt (which leaves on a new line).
    pub fn cmdloop(&mut self, prompt: &str) {
        self.interactive = true;
        self.onecmd("status");
        while !self.quit && !self.output_broken() {
            self.out.flush();
            match self.env.read_command(prompt) {
                ShellInput::Line(line) => {
                    self.env.begin_command();
                    self.onecmd(&line);
                }
                ShellInput::Eof => self.onecmd("EOF"),
                ShellInput::EofShown => self.quit = true,
                // Python prints an empty line and leaves; the editor has printed it.
                ShellInput::Interrupted => break,
            }
        }
        self.out.flush();
    }
}

/// The command words Python's completion offers, in its order (`Controller.vocab`: `help`,
/// then the default plugin's `do_*` names as `dir()` sorts them).
const VOCAB: [&str; 23] = [
    "help", "add", "avail", "clear", "exit", "fg", "help", "maintail", "open", "pid", "quit",
    "reload", "remove", "reread", "restart", "shutdown", "signal", "start", "status", "stop",
    "tail", "update", "version",
];

/// `Controller.complete`'s matches for the word `text` in the whole line `line`; `info`
/// gives `(group, name)` of every process (asked only when names are needed).
pub fn completions(
    line: &str,
    text: &str,
    info: &mut dyn FnMut() -> Vec<(String, String)>,
) -> Vec<String> {
    let actions =
        || VOCAB.iter().filter(|a| a.starts_with(text)).map(|a| format!("{a} ")).collect();
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(&action) = words.first() else { return actions() };
    if words.len() == 1 && !line.ends_with(' ') {
        return actions();
    }
    // Python tests `action in ('help')`, a substring test on the string "help".
    if "help".contains(action) {
        return actions();
    }
    if ["add", "remove", "update"].contains(&action) {
        let mut groups: Vec<String> = Vec::new();
        for (group, _) in info() {
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        return groups.into_iter().filter(|g| g.starts_with(text)).map(|g| g + " ").collect();
    }
    let takes_process =
        ["clear", "fg", "pid", "restart", "signal", "start", "status", "stop", "tail"];
    if takes_process.contains(&action) {
        let mut procs: Vec<String> = Vec::new();
        for (group, name) in info() {
            if text.contains(':') || name != group {
                procs.push(format!("{group}:{name}"));
                let all = format!("{group}:*");
                if !procs.contains(&all) {
                    procs.push(all);
                }
            } else {
                procs.push(name);
            }
        }
        return procs.into_iter().filter(|p| p.starts_with(text)).map(|p| p + " ").collect();
    }
    Vec::new()
}

/// Readline's word delimiters as Python's shell sets them (Python's readline defaults
/// without `:`, `*` and `-`, so `group:name`, `group:*` and dashed names are one word).
fn is_delimiter(c: char) -> bool {
    " \t\n`~!@#$%^&()=+[{]}\\|;'\",<>/?".contains(c)
}

/// The line editor's helper: completion against the daemon, whose process list is fetched
/// on the first Tab that needs it and kept until the next command (as Python caches it).
pub struct Completion {
    client: RefCell<Client>,
    cache: RefCell<Option<Vec<(String, String)>>>,
}

impl Completion {
    pub fn new(client: Client) -> Completion {
        Completion { client: RefCell::new(client), cache: RefCell::new(None) }
    }

    fn processes(&self) -> Vec<(String, String)> {
        let mut cache = self.cache.borrow_mut();
        cache
            .get_or_insert_with(|| {
                // The rows `status` reads (the slim call where the daemon has it).
                let rows = super::commands::Rpc::all_process_info(&mut *self.client.borrow_mut());
                rows.map(|rows| rows.into_iter().map(|r| (r.group, r.name)).collect())
                    .unwrap_or_default()
            })
            .clone()
    }
}

impl Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = line.get(..pos).unwrap_or(line);
        let start = head.rfind(is_delimiter).map_or(0, |i| i + 1);
        let text = head.get(start..).unwrap_or("");
        // GNU readline shows (and completes from) the matches sorted, without duplicates.
        let mut matches = completions(line, text, &mut || self.processes());
        matches.sort();
        matches.dedup();
        Ok((start, matches))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// stdin, read a line at a time straight from the descriptor (nothing is read ahead of a
/// line break into a buffer that another reader would not see).
#[derive(Default)]
pub struct StdinLines {
    buf: Vec<u8>,
    eof: bool,
}

impl StdinLines {
    /// One `read` of whatever is there, waiting at most `timeout` for it.
    fn fill(&mut self, timeout: nix::poll::PollTimeout) {
        if self.eof {
            return;
        }
        let stdin = std::io::stdin();
        let mut fds = [nix::poll::PollFd::new(stdin.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => return,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return,
            Err(_) => {
                self.eof = true;
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(stdin.as_fd(), &mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => self.eof = true,
        }
    }

    fn take_line(&mut self) -> Option<String> {
        let end = match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            // A last line without a newline is still a line.
            None if self.eof && !self.buf.is_empty() => self.buf.len(),
            None => return None,
        };
        let mut line: Vec<u8> = self.buf.drain(..end).collect();
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// The next line if one is there, without waiting (`fg`'s input).
    pub fn try_line(&mut self) -> StdinLine {
        if let Some(line) = self.take_line() {
            return StdinLine::Line(line);
        }
        self.fill(nix::poll::PollTimeout::ZERO);
        match self.take_line() {
            Some(line) => StdinLine::Line(line),
            None if self.eof => StdinLine::Eof,
            None => StdinLine::Nothing,
        }
    }

    /// The next line, waiting for it; `None` at EOF.
    pub fn line(&mut self) -> Option<String> {
        loop {
            if let Some(line) = self.take_line() {
                return Some(line);
            }
            if self.eof {
                return None;
            }
            self.fill(nix::poll::PollTimeout::NONE);
        }
    }
}

/// Where the shell's input comes from: a line editor on a terminal, or plain stdin.
pub struct Console {
    editor: Option<Editor<Completion, FileHistory>>,
    history_file: Option<PathBuf>,
    pub stdin: StdinLines,
}

impl Console {
    /// Plain stdin (one-shot commands, and the shell when not on a terminal).
    pub fn plain() -> Console {
        Console { editor: None, history_file: None, stdin: StdinLines::default() }
    }

    /// The shell's console: a line editor when stdin and stdout are terminals (as Python
    /// uses readline only then), completing with `completion`, with `history_file` loaded.
    pub fn shell(completion: Completion, history_file: Option<PathBuf>) -> Console {
        let mut console = Console::plain();
        let terminal = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false)
            && nix::unistd::isatty(std::io::stdout().as_fd()).unwrap_or(false);
        if !terminal {
            return console;
        }
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(true)
            .history_ignore_dups(true)
            .map(|b| b.build());
        let Ok(config) = config else { return console };
        let Ok(mut editor) = Editor::<Completion, FileHistory>::with_config(config) else {
            return console;
        };
        editor.set_helper(Some(completion));
        if let Some(path) = &history_file {
            // A missing or unreadable file is an empty history, as in Python.
            let _ = editor.load_history(path);
        }
        console.editor = Some(editor);
        console.history_file = history_file;
        console
    }

    /// The shell's next command line.
    pub fn read_command(&mut self, prompt: &str) -> ShellInput {
        if let Some(editor) = &mut self.editor {
            if let Some(helper) = editor.helper_mut() {
                helper.cache.replace(None);
            }
            return match editor.readline(prompt) {
                Ok(line) => ShellInput::Line(line),
                Err(ReadlineError::Interrupted) => ShellInput::Interrupted,
                // The editor has printed the newline `EOF` would print.
                Err(ReadlineError::Eof) => ShellInput::EofShown,
                Err(_) => ShellInput::Eof,
            };
        }
        match self.ask(prompt) {
            Some(line) => ShellInput::Line(line),
            None => ShellInput::Eof,
        }
    }

    /// `getpass.getpass(prompt)`: the terminal's echo off while the password is typed;
    /// without a terminal, Python's warning and a line of stdin.
    pub fn ask_password(&mut self, prompt: &str) -> Option<String> {
        match rpassword::prompt_password(prompt) {
            Ok(password) => Some(password),
            // Ctrl-D at the prompt.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(_) => {
                let mut err = std::io::stderr();
                let warning = format!("Warning: Password input may be echoed.\n{prompt}");
                let _ = err.write_all(warning.as_bytes()).and_then(|()| err.flush());
                self.stdin.line()
            }
        }
    }

    /// Points the completion's client where the shell's now goes.
    pub fn server_changed(&mut self, url: Option<&str>, credentials: Option<(&str, &str)>) {
        let Some(helper) = self.editor.as_mut().and_then(|e| e.helper_mut()) else { return };
        let mut client = helper.client.borrow_mut();
        if let Some(url) = url {
            client.set_serverurl(url);
        }
        if let Some((username, password)) = credentials {
            client.set_credentials(Some(username), Some(password));
        }
        helper.cache.replace(None);
    }

    /// `raw_input(prompt)`.
    pub fn ask(&mut self, prompt: &str) -> Option<String> {
        if let Some(editor) = &mut self.editor {
            return editor.readline(prompt).ok();
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(prompt.as_bytes()).and_then(|()| out.flush());
        self.stdin.line()
    }
}

impl Drop for Console {
    /// Python's shell writes its history file when it exits, as GNU readline does: one
    /// entry per line.
    fn drop(&mut self) {
        let (Some(editor), Some(path)) = (&self.editor, &self.history_file) else { return };
        let mut text = String::new();
        for entry in editor.history().iter() {
            text.push_str(entry);
            text.push('\n');
        }
        let _ = std::fs::write(path, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Vec<(String, String)> {
        [("web", "web"), ("pool", "pool_00"), ("pool", "pool_01"), ("cat", "cat")]
            .iter()
            .map(|(g, n)| (g.to_string(), n.to_string()))
            .collect()
    }

    fn c(line: &str, text: &str) -> Vec<String> {
        completions(line, text, &mut info)
    }

    #[test]
    fn completes_like_pythons_controller() {
        assert_eq!(c("", ""), VOCAB.map(|a| format!("{a} ")).to_vec());
        assert_eq!(c("st", "st"), ["start ", "status ", "stop "]);
        assert_eq!(c("he", "he"), ["help ", "help "]);
        assert_eq!(c("help st", "st"), ["start ", "status ", "stop "]);
        assert_eq!(c("stop ", ""), ["web ", "pool:pool_00 ", "pool:* ", "pool:pool_01 ", "cat "]);
        assert_eq!(c("stop p", "p"), ["pool:pool_00 ", "pool:* ", "pool:pool_01 "]);
        assert_eq!(c("stop w", "w"), ["web "]);
        assert_eq!(c("stop web:", "web:"), ["web:web ", "web:* "]);
        assert_eq!(c("update ", ""), ["web ", "pool ", "cat "]);
        assert_eq!(c("reread ", ""), Vec::<String>::new());
        // `action in ('help')`: any part of "help" counts as help.
        assert_eq!(c("el ", "ad"), ["add "]);
    }

    #[test]
    fn names_are_asked_for_only_when_needed() {
        let asked = std::cell::Cell::new(0);
        let mut info = || {
            asked.set(asked.get() + 1);
            Vec::new()
        };
        let _ = completions("sta", "sta", &mut info);
        assert_eq!(asked.get(), 0);
        let _ = completions("start ", "", &mut info);
        assert_eq!(asked.get(), 1);
    }

    #[test]
    fn word_delimiters_keep_group_names_whole() {
        for c in [':', '*', '-', '_', '.'] {
            assert!(!is_delimiter(c), "{c}");
        }
        for c in [' ', '\t', '=', ';'] {
            assert!(is_delimiter(c), "{c}");
        }
    }
}
