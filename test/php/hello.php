<?php
// Smallest fixture: body is exactly `Hello, World!` (13 bytes, no newline).
header('Content-Type: text/plain');
echo 'Hello, World!';
