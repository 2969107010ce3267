<?php
// The legacy site's home page: still PHP after the migration.
header('Content-Type: text/html; charset=utf-8');
header('X-Served-By: legacy-php');
?>
<!doctype html>
<title>Legacy shop</title>
<h1>Legacy shop (PHP)</h1>
<ul>
  <li><a href="/report.php">Sales report</a> (moved to Express)</li>
  <li><a href="/contact.php">Contact</a> (still PHP)</li>
</ul>
