#!/bin/sh
# An etmem policy process (etmem-policy(7), protocol version 1): swap out every page that
# no scan of the cycle saw accessed (access count 0), keep the rest.
#
# Install it owned by root:root with mode 0700 (or 0500), and name it in a thirdparty
# engine: name=thirdparty, eng_name=..., exec=/usr/libexec/etmem/swap_idle_policy.sh
# (conf/thirdparty_exec_conf.yaml). etmemd does the scanning and the swapping; this
# program only reads scans on its standard input and answers on its standard output.
# What it writes to standard error goes to etmemd's log.
#
# Engine command: `etmem engine stats -n PROJECT -e ENGINE` prints how many ranges it
# has asked to swap since it started.
asked=0
while read -r word a rest; do
  case $word in
    hello) echo "hello etmem-policy 1 command" ;;
    engine | task)
      # The group's keys, up to "end"; this policy has none of its own.
      while read -r w rest; do [ "$w" = end ] && break; done
      echo ok ;;
    start | stop | forget) echo ok ;;
    scan)
      # "vma" and "pages START-END SIZE COUNT" lines, up to "end".
      while read -r w range size count; do
        case $w in
          end) break ;;
          pages)
            if [ "$count" = 0 ]; then
              echo "swap $range"
              asked=$((asked + 1))
            fi ;;
        esac
      done
      echo end ;;
    command)
      if [ "$a" = stats ]; then
        echo "text swap ranges asked: $asked"
        echo end
      else
        echo "error unknown command $a (this policy has: stats)"
      fi ;;
    bye) exit 0 ;;
    *) echo "error unknown request $word" ;;
  esac
done
