<?php
// Directory index fixture: GET / (nginx `index index.php`) or /index.php.
echo "index";
