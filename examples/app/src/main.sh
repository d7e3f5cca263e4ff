#!/bin/sh
echo "hello from the rbuild example"
