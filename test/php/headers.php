<?php
// Response header fixture.
//   default           : 418 via http_response_code(418) ("418 I'm a teapot")
//   ?line=1           : 418 via header("HTTP/1.1 418 Short And Stout") (custom reason phrase)
//   ?redirect=1       : Location: /x (PHP turns that into 302 Found), body "redirect"
// Always: Content-Type text/plain, X-Custom, two X-Multi lines, Cache-Control,
// and two Set-Cookie headers (a=1; b=2 with Path=/ and HttpOnly).
header('Content-Type: text/plain; charset=utf-8');
header('X-Custom: custom-value');
header('X-Multi: first');
header('X-Multi: second', false);
header('Cache-Control: no-store');
setcookie('a', '1');
setcookie('b', '2', ['path' => '/', 'httponly' => true]);
if (!empty($_GET['redirect'])) {
    header('Location: /x');
    echo "redirect";
    exit;
}
if (!empty($_GET['line'])) {
    header("HTTP/1.1 418 Short And Stout");
} else {
    http_response_code(418);
}
echo "teapot";
