// The run-state model alone, without a window or an engine: which answers are stale after a
// slider move, the auto-run rule against the threshold (twenty moves in a row after a slow run
// start no generation; after a fast one they start exactly one, once the controls rest), and
// that results of superseded or forgotten requests are dropped.
#include <QtTest>

#include "ui/runstate.h"

using namespace dlui;

static const QStringList k_methods = {"none", "dart", "fastv"};

// The keys the window would push for reduction ratio R (only DART and FastV depend on it).
static QMap<QString, QString> keys_for(double ratio, const QString& inputs = "model|image|question") {
    QMap<QString, QString> keys;
    for (const QString& m : k_methods) {
        dl::PruneConfig c;
        c.method = m.toStdString();
        if (m != "none") c.ratio = ratio;
        keys[m] = run_key(inputs, c);
    }
    return keys;
}

static dl::MethodRun answer(const QString& method, bool cancelled = false) {
    dl::MethodRun r;
    r.config.method = method.toStdString();
    r.pruning.method = method.toStdString();
    r.text = "a red square";
    r.cancelled = cancelled;
    return r;
}

// A whole run of `methods` that takes at least takesMs of wall time.
static void complete_run(RunState& state, quint64 generation, const QStringList& methods, int takesMs,
                         bool cold = false) {
    state.beginRun(generation, methods, cold);
    QTest::qWait(takesMs);
    for (int i = 0; i < methods.size(); ++i) QVERIFY(state.methodArrived(generation, i, answer(methods[i])));
    QVERIFY(state.runArrived(generation));
}

class TestRunState : public QObject {
    Q_OBJECT
private slots:
    void runKeysTellConfigurationsApart() {
        dl::PruneConfig a;
        a.method = "dart";
        a.ratio = 0.5;
        dl::PruneConfig b = a;
        QCOMPARE(run_key("x", a), run_key("x", b));
        b.pivots_image = 8;
        QVERIFY(run_key("x", a) != run_key("x", b));
        b = a;
        b.ratio = 0.5001;  // the label rounds, the key does not
        QVERIFY(run_key("x", a) != run_key("x", b));
        QVERIFY(run_key("x", a) != run_key("y", a));  // other inputs: another question, image ...
    }

    void sliderMoveMarksAnswersStale() {
        RunState state;
        QSignalSpy answers(&state, &RunState::answersChanged);
        state.setControls(k_methods, keys_for(0.5));
        QVERIFY(!state.hasResults());
        QCOMPARE(state.methodsToRun(false), k_methods);  // nothing answered yet
        complete_run(state, 1, k_methods, 0);
        QVERIFY(state.hasResults());
        for (const QString& m : k_methods) QVERIFY(state.isCurrent(m) && !state.isStale(m));
        QVERIFY(state.methodsToRun(false).isEmpty());

        // the slider moves R: DART and FastV no longer match, the unpruned answer still does
        const int before = answers.count();
        state.setControls(k_methods, keys_for(0.75));
        QCOMPARE(answers.count(), before + 1);
        QVERIFY(state.isStale("dart") && state.isStale("fastv"));
        QVERIFY(!state.isStale("none") && state.isCurrent("none"));
        QVERIFY(!state.hasResults());
        QCOMPARE(state.methodsToRun(false), (QStringList{"dart", "fastv"}));
        QCOMPARE(state.methodsToRun(true), k_methods);  // a cold measurement re-times everything
        QVERIFY(state.run("dart"));                     // the stale answer is still shown
        // the same controls again: nothing changes, no signal
        state.setControls(k_methods, keys_for(0.75));
        QCOMPARE(answers.count(), before + 1);
        // back where the answers were made: current again
        state.setControls(k_methods, keys_for(0.5));
        QCOMPARE(answers.count(), before + 2);
        QVERIFY(state.hasResults());

        // another question makes every answer stale
        state.setControls(k_methods, keys_for(0.5, "model|image|another question"));
        for (const QString& m : k_methods) QVERIFY(state.isStale(m));
        // a column shown without an answer: not stale, but it needs a run
        state.setControls(k_methods + QStringList{"random"}, keys_for(0.5));
        QVERIFY(!state.isStale("random") && !state.isCurrent("random"));
        QCOMPARE(state.methodsToRun(false), QStringList{"random"});
    }

    // The test the window's 7B case rests on: after a run slower than the threshold, twenty moves
    // in a row (released each time, as a click on the slider's groove does) start nothing.
    void twentyMovesAfterASlowRunStartNoGeneration() {
        RunState state;
        state.setAutoRunDelayMs(20);
        state.setAutoRunThresholdMs(10);
        state.setControls(k_methods, keys_for(0.5));
        complete_run(state, 1, k_methods, 40);
        QVERIFY(state.lastRunMs() >= 40);
        QVERIFY(!state.autoRunAllowed());
        QSignalSpy due(&state, &RunState::autoRunDue);
        QSignalSpy kept(&state, &RunState::staleAnswersKept);
        for (int i = 0; i < 20; ++i) {
            state.setControls(k_methods, keys_for(0.3 + 0.02 * i));
            state.controlsChanged(true);  // dragged
            state.interactionFinished();  // released
            state.controlsChanged(false);
            QVERIFY(!state.autoRunPending());
        }
        QTest::qWait(200);  // ten times the debounce
        QCOMPARE(due.count(), 0);
        QVERIFY(kept.count() >= 20);  // each move says the answers are stale
        QVERIFY(state.isStale("dart"));
        // the threshold raised above the last run's time: the next change regenerates
        state.setAutoRunThresholdMs(600000);
        state.setControls(k_methods, keys_for(0.4));
        state.controlsChanged(false);
        QTRY_COMPARE(due.count(), 1);
    }

    void movesAfterAFastRunRegenerateOnceAtRest() {
        RunState state;
        state.setAutoRunDelayMs(50);
        state.setAutoRunThresholdMs(600000);
        state.setControls(k_methods, keys_for(0.5));
        complete_run(state, 1, k_methods, 0);
        QVERIFY(state.autoRunAllowed());
        QSignalSpy due(&state, &RunState::autoRunDue);
        // twenty moves without pause: one run once they rest (debounced)
        for (int i = 0; i < 20; ++i) {
            state.setControls(k_methods, keys_for(0.3 + 0.02 * i));
            state.controlsChanged(false);
        }
        QVERIFY(state.autoRunPending());
        QTRY_COMPARE(due.count(), 1);
        QTest::qWait(150);
        QCOMPARE(due.count(), 1);

        // a slider held down: nothing until it is released, then at once
        state.setControls(k_methods, keys_for(0.2));
        state.controlsChanged(true);
        QTest::qWait(150);
        QCOMPARE(due.count(), 1);
        state.interactionFinished();
        QTRY_COMPARE(due.count(), 2);

        // a change back to what the answers were made with needs no run
        state.setControls(k_methods, keys_for(0.5));
        state.controlsChanged(false);
        QVERIFY(!state.autoRunPending());
        QTest::qWait(150);
        QCOMPARE(due.count(), 2);

        // threshold 0 = never
        state.setAutoRunThresholdMs(0);
        state.setControls(k_methods, keys_for(0.1));
        state.controlsChanged(false);
        QTest::qWait(150);
        QCOMPARE(due.count(), 2);
    }

    void noAutoRunBeforeAnyRunWasTimed() {
        RunState state;
        state.setAutoRunDelayMs(0);
        state.setAutoRunThresholdMs(600000);
        QCOMPARE(state.lastRunMs(), qint64(-1));
        QVERIFY(!state.autoRunAllowed());  // a first run of a big model may take minutes
        QSignalSpy due(&state, &RunState::autoRunDue);
        state.setControls(k_methods, keys_for(0.5));
        state.controlsChanged(false);
        state.scheduleAutoRun();
        QTest::qWait(50);
        QCOMPARE(due.count(), 0);
    }

    void coldMeasurementIsNotTheCostOfARun() {
        RunState state;
        state.setControls(k_methods, keys_for(0.5));
        complete_run(state, 1, k_methods, 0);
        const qint64 warm = state.lastRunMs();
        complete_run(state, 2, k_methods, 60, true);
        QCOMPARE(state.lastRunMs(), warm);
        QVERIFY(state.hasResults());
    }

    // The controls move while a run is under way: its answers arrive stale (they were made with
    // the old controls) and, runs being fast, the next one starts by itself.
    void changeDuringARunRegeneratesAfterIt() {
        RunState state;
        state.setAutoRunDelayMs(0);
        state.setAutoRunThresholdMs(600000);
        state.setControls(k_methods, keys_for(0.5));
        complete_run(state, 1, k_methods, 0);
        state.setControls(k_methods, keys_for(0.6));
        state.beginRun(2, {"dart", "fastv"}, false);
        state.setControls(k_methods, keys_for(0.7));  // moved again meanwhile
        QSignalSpy due(&state, &RunState::autoRunDue);
        QVERIFY(state.methodArrived(2, 0, answer("dart")));
        QVERIFY(state.methodArrived(2, 1, answer("fastv")));
        QVERIFY(state.isStale("dart"));  // made with R = 0.6, the slider says 0.7
        QVERIFY(state.runArrived(2));
        QTRY_COMPARE(due.count(), 1);
    }

    void supersededResultsAreDropped() {
        RunState state;
        QSignalSpy selections(&state, &RunState::selectionsChanged);
        state.setControls(k_methods, keys_for(0.5));
        dl::PruningResult r;
        r.method = "dart";
        r.budget = 8;
        state.beginPreview(4, k_methods);
        state.beginPreview(5, k_methods);
        QVERIFY(!state.previewArrived(4, {r, r, r}));  // an older preview
        QCOMPARE(selections.count(), 0);
        QVERIFY(!state.selection("dart"));
        QVERIFY(state.previewArrived(5, {dl::PruningResult{}, r, dl::PruningResult{}}));
        QCOMPARE(selections.count(), 1);
        QCOMPARE(state.selection("dart")->budget, 8);

        state.beginRun(7, {"dart"}, false);
        QVERIFY(!state.methodArrived(6, 0, answer("dart")));  // an older run
        QVERIFY(!state.methodArrived(7, 3, answer("dart")));  // no such slot
        QVERIFY(!state.runArrived(6));
        QVERIFY(!state.run("dart"));

        // a new image: everything forgotten, and what was on its way for the old one dropped
        state.reset();
        QVERIFY(!state.selection("dart"));
        QVERIFY(!state.methodArrived(7, 0, answer("dart")));
        QVERIFY(!state.previewArrived(5, {r, r, r}));
        QVERIFY(!state.hasRuns());
    }

    void cancelledAnswerIsShownButNeverCurrent() {
        RunState state;
        state.setControls(k_methods, keys_for(0.5));
        state.beginRun(1, k_methods, false);
        QVERIFY(state.methodArrived(1, 0, answer("none", true)));
        QVERIFY(state.run("none") && state.run("none")->cancelled);
        QVERIFY(!state.isCurrent("none"));
        QVERIFY(!state.isStale("none"));  // it says it was cancelled itself
        QVERIFY(!state.countsInFigures("none"));
        QCOMPARE(state.methodsToRun(false), k_methods);
    }
};

QTEST_GUILESS_MAIN(TestRunState)
#include "test_runstate.moc"
