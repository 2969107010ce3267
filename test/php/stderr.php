<?php
// Writes one line to FastCGI STDERR (error_log goes there under FPM) and answers "ok".
error_log('bridge-stderr-check');
echo "ok";
