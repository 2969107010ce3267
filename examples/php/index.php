<?php
// A tiny PHP app for `m2bridge --fcgi`: a guestbook-style form that shows
// what PHP saw (method, path, query, form fields) through Mongrel2.
header('Content-Type: text/html; charset=utf-8');
$h = fn ($s) => htmlspecialchars((string) $s, ENT_QUOTES);
$name = $_POST['name'] ?? $_GET['name'] ?? '';
?>
<!doctype html>
<title>PHP behind Mongrel2</title>
<h1>Hello<?= $name !== '' ? ', ' . $h($name) : '' ?>!</h1>
<p>PHP <?= $h(PHP_VERSION) ?> answered <code><?= $h($_SERVER['REQUEST_METHOD']) ?> <?= $h($_SERVER['REQUEST_URI']) ?></code>
via <?= $h($_SERVER['SERVER_SOFTWARE'] ?? 'FastCGI') ?>.</p>
<form method="post"><label>Name <input name="name" value="<?= $h($name) ?>"></label> <button>Say hello</button></form>
