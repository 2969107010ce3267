<?php
header('Content-Type: text/plain; charset=utf-8');
header('X-Served-By: legacy-php');
echo "Write to shop@example.invalid\n";
